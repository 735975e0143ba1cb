#!/usr/bin/env bash
# CLI test of long generations on the engine: `rvec generate --samples` shares the prompt's KV,
# --kv-dtype halves it, the memory forecast is printed and refuses what cannot fit, and
# `rvec bench` reports shared-context decode and the bf16-against-f32 KV comparison.
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$RVEC" synth --preset tiny-qwen2 --seed 3 --dtype bf16 -o tiny -q > /dev/null
PROMPT="Question: a farmer has 17 sheep and buys 23 more, then sells a third of the flock. How \
many sheep are left? Think step by step, then give the final answer on its own line."

# K samples of one prompt: the samples reference one copy of the prompt's KV.
for dt in bf16 f32; do
  "$RVEC" generate tiny --prompt "$PROMPT" --samples 4 --temperature 0.8 --seed 2 \
    --max-tokens 12 --kv-dtype "$dt" --json > "k_$dt.json"
done
python3 - k_bf16.json k_f32.json <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); f = json.load(open(sys.argv[2]))
for j, dt in ((b, "bf16"), (f, "f32")):
    assert j["kv_dtype"] == dt
    assert len(j["samples"]) == 4
    assert j["kv_shared_positions"] >= 3 * 16, j["kv_shared_positions"]
    fc = j["forecast"]
    assert fc["batch"] == 4 and fc["kv_saved_bytes"] > 0
    assert fc["total_bytes"] == fc["weight_bytes"] + fc["kv_bytes"] + fc["scratch_bytes"]
    assert 0 < j["kv_peak_bytes"] <= fc["kv_bytes"], (j["kv_peak_bytes"], fc["kv_bytes"])
# bf16 KV is half of f32 KV, byte for byte.
assert 2 * b["forecast"]["kv_bytes"] == f["forecast"]["kv_bytes"]
assert len({s["text"] for s in b["samples"]}) > 1, "the samples should differ"
PY

# The forecast is printed before generating; a budget too small for one sequence is refused.
"$RVEC" generate tiny --prompt "$PROMPT" --max-tokens 4 > /dev/null 2> forecast.txt
grep -q "memory forecast: batch 1" forecast.txt || fail "no forecast line: $(cat forecast.txt)"
set +e
"$RVEC" generate tiny --prompt "$PROMPT" --max-tokens 4000 --kv-cache-gb 0.000001 \
  > /dev/null 2> refused.txt
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a generation over the KV budget was accepted"
grep -q "KV cache budget" refused.txt || fail "unclear refusal: $(cat refused.txt)"

# rvec eval: --kv-cache-gb reaches the engine (a budget too small for one sequence is refused, with
# the numbers), and the forecast of the last generation batch is printed.
DATA="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:?run through ctest, or set RVEC_TEST_DATA}}"
set +e
"$RVEC" eval tiny --tasks gsm8k --limit 1 --max-gen-tokens 8 --kv-cache-gb 0.000001 \
  --data-dir "$DATA" -o eval_refused > /dev/null 2> eval_refused.txt
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "rvec eval over the KV budget was accepted"
grep -q "KV cache budget" eval_refused.txt || fail "unclear eval refusal: $(cat eval_refused.txt)"
"$RVEC" eval tiny --tasks gsm8k --limit 2 --max-gen-tokens 8 --kv-cache-gb 0.5 \
  --data-dir "$DATA" -o eval_ok > /dev/null 2> eval_ok.txt
grep -q "last generation batch: memory forecast: batch 2" eval_ok.txt ||
  fail "no eval forecast line: $(cat eval_ok.txt)"
set +e
"$RVEC" generate tiny --prompt hi --kv-dtype f16 2> bad_dtype.txt
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "--kv-dtype f16 was accepted"

# Bench: decode sequences share the context's KV (or copy it), in either dtype.
for mode in shared copied; do
  extra=""
  [ "$mode" = copied ] && extra="--copy-context"
  for dt in bf16 f32; do
    "$RVEC" bench tiny --prompt-tokens 0 --context 40 --gen-tokens 3 --batch 1,3 --repeats 1 \
      --bandwidth-mb 16 --kv-dtype "$dt" $extra --json -q > "bench_${mode}_$dt.json"
  done
done
"$RVEC" bench tiny --prompt-tokens 32 --gen-tokens 0 --compare-kv-steps 8 --repeats 1 \
  --bandwidth-mb 16 --json -q > compare.json
python3 - <<'PY'
import json
def load(mode, dt):
    return json.load(open(f"bench_{mode}_{dt}.json"))
for dt in ("bf16", "f32"):
    s, c = load("shared", dt), load("copied", dt)
    assert s["kv_dtype"] == dt
    for ds, dc in zip(s["decode"], c["decode"]):
        assert ds["context_kv"] == "shared" and dc["context_kv"] == "copied"
        assert ds["kv_bytes_if_copied"] == dc["kv_bytes"], (ds, dc)
        if ds["batch"] == 3:
            assert ds["kv_bytes"] < dc["kv_bytes"], (ds["kv_bytes"], dc["kv_bytes"])
b, f = load("copied", "bf16"), load("copied", "f32")
assert 2 * b["decode"][1]["kv_bytes"] == f["decode"][1]["kv_bytes"]
c = json.load(open("compare.json"))["kv_bf16_vs_f32"]
assert c["positions_compared"] == 9 and c["prompt_tokens"] == 32
assert 0 < c["max_abs_logit_diff"] < 0.1 * c["max_abs_logit"], c
assert 0 <= c["greedy_token_changes"] <= 9
PY
echo OK
