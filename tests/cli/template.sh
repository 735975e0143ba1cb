#!/usr/bin/env bash
# `rvec template`: renders the Qwen2.5 reference conversations byte for byte (text, --ids, --json),
# takes extra variables, and fails with a message naming the template line on bad input.
# Usage: template.sh RVEC_BINARY SCRATCH_DIR
set -u
rvec="$1"
scratch="$2"
data="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:-}}/qwen-tokenizer"
mkdir -p "$scratch"
fail=0
check() {  # check NAME EXPECTED_FILE ACTUAL_FILE
  if ! cmp -s "$2" "$3"; then
    echo "FAIL $1"; echo "--- expected"; cat "$2"; echo; echo "--- got"; cat "$3"; echo; fail=1
  fi
}
if [ ! -d "$data/qwen2.5" ]; then
  echo "FAIL: test data missing at $data (the repository's testdata/, or RVEC_TEST_DATA)"; exit 1
fi

"$rvec" template --help >"$scratch/help" 2>&1 || { echo "FAIL --help exited non-zero"; fail=1; }
grep -q "Examples:" "$scratch/help" || { echo "FAIL --help has no example"; fail=1; }

# Row 1 of chat_template_vectors.jsonl: one user message, add_generation_prompt=true.
printf '[{"role":"user","content":"Hello!"}]' >"$scratch/m.json"
printf '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n' >"$scratch/expected"
"$rvec" template "$data/qwen2.5" --messages "$scratch/m.json" --add-generation-prompt \
  >"$scratch/out" 2>"$scratch/err" || { echo "FAIL render exited non-zero"; cat "$scratch/err"; fail=1; }
check "render qwen2.5-instruct" "$scratch/expected" "$scratch/out"

# The same ids as the reference row (tokenize=True).
echo "151644 8948 198 2610 525 1207 16948 11 3465 553 54364 14817 13 1446 525 264 10950 17847 13 151645 198 151644 872 198 9707 0 151645 198 151644 77091 198" >"$scratch/expected_ids"
"$rvec" template "$data/qwen2.5" --messages "$scratch/m.json" --add-generation-prompt --ids \
  >"$scratch/ids" 2>"$scratch/err" || { echo "FAIL --ids exited non-zero"; cat "$scratch/err"; fail=1; }
check "--ids" "$scratch/expected_ids" "$scratch/ids"

# --json carries the exact text; stdin works; object form with an extra variable (Qwen3 thinking).
"$rvec" template "$data/qwen2.5" --messages - --json <"$scratch/m.json" >"$scratch/json" \
  2>"$scratch/err" || { echo "FAIL --json exited non-zero"; cat "$scratch/err"; fail=1; }
grep -qF '"text":"<|im_start|>system\nYou are Qwen' "$scratch/json" || {
  echo "FAIL --json output"; cat "$scratch/json"; fail=1; }
printf '{"messages":[{"role":"user","content":"Hi"}],"enable_thinking":false}' >"$scratch/obj.json"
printf '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n' >"$scratch/expected3"
"$rvec" template "$data/qwen3" --messages "$scratch/obj.json" --add-generation-prompt \
  >"$scratch/out3" 2>"$scratch/err" || { echo "FAIL qwen3 exited non-zero"; cat "$scratch/err"; fail=1; }
check "qwen3 enable_thinking=false" "$scratch/expected3" "$scratch/out3"
"$rvec" template "$data/qwen3" --messages "$scratch/m.json" --add-generation-prompt \
  --var enable_thinking=false >"$scratch/out4" 2>"$scratch/err" || { echo "FAIL --var"; fail=1; }
printf '<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n' >"$scratch/expected4"
check "--var enable_thinking=false" "$scratch/expected4" "$scratch/out4"

# A custom template file; a runtime error names the line; a syntax error names the line.
printf 'A\n{%% for m in messages %%}{{ m.content }}{%% endfor %%}\n' >"$scratch/t.jinja"
"$rvec" template --template "$scratch/t.jinja" --messages "$scratch/m.json" >"$scratch/out5" 2>&1
printf 'A\nHello!' >"$scratch/expected5"
check "--template" "$scratch/expected5" "$scratch/out5"
printf 'x\n{{ raise_exception("roles must alternate") }}' >"$scratch/bad.jinja"
"$rvec" template --template "$scratch/bad.jinja" --messages "$scratch/m.json" >"$scratch/out6" 2>"$scratch/err6"
rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then echo "FAIL raise_exception exit $rc"; fail=1; fi
grep -q "line 2.*roles must alternate" "$scratch/err6" || { echo "FAIL raise message"; cat "$scratch/err6"; fail=1; }
[ -s "$scratch/out6" ] && { echo "FAIL printed output despite error"; fail=1; }
printf 'ok\n\n{%% if x %%}\n{%% endfor %%}' >"$scratch/syntax.jinja"
"$rvec" template --template "$scratch/syntax.jinja" --messages "$scratch/m.json" >/dev/null 2>"$scratch/err7"
grep -q "syntax.jinja: chat template line 4" "$scratch/err7" || { echo "FAIL syntax error line"; cat "$scratch/err7"; fail=1; }

# Bad inputs: not JSON, not a list, no template in the directory.
printf '{oops' >"$scratch/bad.json"
"$rvec" template "$data/qwen2.5" --messages "$scratch/bad.json" >/dev/null 2>"$scratch/err8"
grep -q "not valid JSON" "$scratch/err8" || { echo "FAIL bad json"; cat "$scratch/err8"; fail=1; }
mkdir -p "$scratch/empty_model"
"$rvec" template "$scratch/empty_model" --messages "$scratch/m.json" >/dev/null 2>"$scratch/err9"
grep -q "no chat template" "$scratch/err9" || { echo "FAIL empty dir"; cat "$scratch/err9"; fail=1; }

exit $fail
