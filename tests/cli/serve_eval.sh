#!/usr/bin/env bash
# CLI test: `rvec eval --backend openai` against `rvec serve` reproduces `rvec eval --backend
# local` on the same model: the same generations (gsm8k, a bbh CoT task), log-likelihoods within
# 1e-5 and the same greedy flags (sciq), the same scores. Both sides use the same engine; the
# server path adds HTTP, JSON, server-side tokenization of generation prompts, echo logprobs and
# concurrent requests joining one continuous batch.
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() {
  echo "FAIL: $*" >&2
  [ -f server.err ] && tail -n 20 server.err >&2
  exit 1
}
src="${RVEC_SOURCE_DIR:?RVEC_SOURCE_DIR is not set (ctest sets it)}"
DATA="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:-$src/testdata}}"
tok="$DATA/qwen-tokenizer/qwen2.5"
[ -f "$tok/tokenizer.json.gz" ] || [ -f "$tok/tokenizer.json" ] || fail "test data missing: $tok"

"$RVEC" synth --preset tiny-qwen2 --seed 7 --tokenizer "$tok" -o q -q > /dev/null
"$RVEC" synth --from q --perturb-std 0.5 --seed 3 -o model -q > /dev/null
tasks="gsm8k,sciq,bbh_cot_fewshot_boolean_expressions"
"$RVEC" eval model --tasks "$tasks" --limit 4 --data-dir "$DATA" -o local -q > /dev/null

# shellcheck source=lib/serve.bash
source "$src/tests/cli/lib/serve.bash"
start_server "$RVEC" model --served-model-name tiny
"$RVEC" eval model --backend openai --endpoint "$url" --served-model tiny --concurrency 8 \
  --tasks "$tasks" --limit 4 --data-dir "$DATA" -o remote -q > /dev/null ||
  fail "rvec eval --backend openai against rvec serve"

python3 - <<'PY' || fail "openai backend against rvec serve differs from the local backend"
import json
tasks = ["gsm8k", "sciq", "bbh_cot_fewshot_boolean_expressions"]
def rows(run, task):
    return {r["doc_id"]: r for r in map(json.loads, open(f"{run}/samples_{task}.jsonl"))}
generated = 0
for task in tasks:
    a, b = rows("local", task), rows("remote", task)
    assert a.keys() == b.keys() and len(a) == 4, (task, a.keys(), b.keys())
    for d in a:
        x, y = a[d], b[d]
        assert x["prompt"] == y["prompt"], (task, d)
        if "raw_output" in x:
            assert x["raw_output"] == y["raw_output"], (task, d, x["raw_output"], y["raw_output"])
            assert x["finish_reason"] == y["finish_reason"], (task, d)
            generated += len(x["raw_output"])
        else:
            for u, v in zip(x["loglikelihoods"], y["loglikelihoods"]):
                assert abs(u - v) <= 1e-5, (task, d, u, v)
            assert len(x["loglikelihoods"]) == len(y["loglikelihoods"]) == 4
            assert x["is_greedy"] == y["is_greedy"], (task, d)
        assert x["metrics"] == y["metrics"], (task, d, x["metrics"], y["metrics"])
ra, rb = (json.load(open(f"{r}/results.json"))["results"] for r in ("local", "remote"))
for task in tasks:
    sa = {k: v for k, v in ra[task].items() if k != "alias"}
    sb = {k: v for k, v in rb[task].items() if k != "alias"}
    assert sa == sb, (task, sa, sb)
# The comparison means something only if text was generated.
assert generated > 200, generated
print(f"serve_eval: {len(tasks)} tasks x 4 docs identical through rvec serve ({generated} chars generated)")
PY
grep -q "POST /v1/completions" server.err || fail "no per-request log lines on stderr"
stop_server
