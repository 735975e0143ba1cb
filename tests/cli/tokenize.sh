#!/usr/bin/env bash
# `rvec tokenize`: encode/decode one text, --tokens/--json output, JSON-lines in both directions
# (checked against the Qwen2.5 reference vectors), stdin input and error exits.
# Usage: tokenize.sh RVEC_BINARY SCRATCH_DIR
set -u
rvec="$1"
scratch="$2"
rm -rf "$scratch"
mkdir -p "$scratch"
data="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:-}}/qwen-tokenizer"
if [ ! -f "$data/qwen2.5/tokenizer.json" ] && [ ! -f "$data/qwen2.5/tokenizer.json.gz" ]; then
  echo "FAIL test data missing: $data/qwen2.5/tokenizer.json[.gz] (the repository's testdata/, or RVEC_TEST_DATA)"
  exit 1
fi
model="$data/qwen2.5"
fail=0
expect_out() {  # expect_out DESCRIPTION EXPECTED COMMAND...
  local what="$1" want="$2"
  shift 2
  local got
  if ! got=$("$@" 2>"$scratch/err"); then
    echo "FAIL $what: exit status $?"
    cat "$scratch/err"
    fail=1
  elif [ "$got" != "$want" ]; then
    echo "FAIL $what: got '$got', want '$want'"
    fail=1
  fi
}
expect_error() {  # expect_error DESCRIPTION EXIT_CODE MESSAGE_PART COMMAND...
  local what="$1" code="$2" part="$3"
  shift 3
  "$@" >"$scratch/out" 2>"$scratch/err"
  local rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL $what: exit $rc, expected $code"
    cat "$scratch/err"
    fail=1
  elif ! grep -q "^rvec: error: .*$part" "$scratch/err"; then
    echo "FAIL $what: stderr lacks '$part'"
    cat "$scratch/err"
    fail=1
  fi
}

expect_out "encode" "9707,1879" "$rvec" tokenize "$model" "Hello world"
expect_out "encode tokenizer.json path" "9707,1879" "$rvec" tokenize "$model/tokenizer.json" \
  "Hello world"
expect_out "encode --tokens" "$(printf '9707\tHello\n1879\tĠworld')" \
  "$rvec" tokenize "$model" "Hello world" --tokens
expect_out "encode --json" '{"count":3,"ids":[9707,220,151645],"tokens":["Hello","Ġ","<|im_end|>"]}' \
  "$rvec" tokenize "$model" "Hello <|im_end|>" --json --tokens
expect_out "decode csv" "Hello world" "$rvec" tokenize "$model" --decode 9707,1879
expect_out "decode json array, skip special" "Hello world" \
  "$rvec" tokenize "$model" --decode "[9707, 1879, 151645]" --skip-special-tokens
expect_out "decode keeps special" "Hello world<|im_end|>" \
  "$rvec" tokenize "$model" --decode "9707 1879 151645"
printf 'Hello world' >"$scratch/in.txt"
expect_out "encode --file" "9707,1879" "$rvec" tokenize "$model" --file "$scratch/in.txt"
expect_out "encode stdin" "9707,1879" bash -c "printf 'Hello world' | '$rvec' tokenize '$model'"

# JSON lines: the first 50 reference vectors, encoded and decoded back.
# (gzip -dcf: the vendored copy is vectors.jsonl.gz, a full data directory may hold it plain)
if [ -f "$data/vectors.jsonl" ]; then vectors="$data/vectors.jsonl"; else vectors="$data/vectors.jsonl.gz"; fi
gzip -dcf "$vectors" | head -n 50 >"$scratch/vectors.jsonl"
python3 - "$scratch/vectors.jsonl" "$scratch" <<'PY' || fail=1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2] + "/texts.jsonl", "w") as f:
    for r in rows: f.write(json.dumps(r["text"]) + "\n")
with open(sys.argv[2] + "/want_ids.jsonl", "w") as f:
    for r in rows: f.write(json.dumps(r["ids"], separators=(",", ":")) + "\n")
with open(sys.argv[2] + "/want_text.jsonl", "w") as f:
    for r in rows: f.write(json.dumps(r["decoded"], ensure_ascii=False, separators=(",", ":")) + "\n")
PY
if "$rvec" tokenize "$model" --jsonl "$scratch/texts.jsonl" >"$scratch/ids.jsonl" 2>"$scratch/err"
then
  cmp -s "$scratch/ids.jsonl" "$scratch/want_ids.jsonl" ||
    { echo "FAIL --jsonl ids differ from the reference"; diff "$scratch/ids.jsonl" \
      "$scratch/want_ids.jsonl" | head; fail=1; }
  "$rvec" tokenize "$model" --jsonl "$scratch/ids.jsonl" --decode >"$scratch/text.jsonl" ||
    { echo "FAIL --jsonl --decode"; fail=1; }
  python3 -c "
import json, sys
got = [json.loads(l) for l in open('$scratch/text.jsonl')]
want = [json.loads(l) for l in open('$scratch/want_text.jsonl')]
sys.exit(0 if got == want else 1)" || { echo "FAIL --jsonl --decode text differs"; fail=1; }
else
  echo "FAIL --jsonl"
  cat "$scratch/err"
  fail=1
fi

expect_error "bad id" 2 "not a token id" "$rvec" tokenize "$model" --decode 1,x
expect_error "missing model" 1 "no tokenizer.json" "$rvec" tokenize "$scratch/none" hi
printf '"ok"\n42\n' >"$scratch/bad.jsonl"
expect_error "bad jsonl line" 2 "line 2" "$rvec" tokenize "$model" --jsonl "$scratch/bad.jsonl"
expect_error "two inputs" 2 "only one" "$rvec" tokenize "$model" hi --file "$scratch/in.txt"
"$rvec" tokenize --help | grep -q "Example" || { echo "FAIL --help lacks an example"; fail=1; }

[ "$fail" -eq 0 ] && echo "tokenize CLI: all checks passed"
exit "$fail"
