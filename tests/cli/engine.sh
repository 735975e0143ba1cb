#!/usr/bin/env bash
# CLI test of the engine commands: `rvec generate` (prompt, chat, sampling, stops, --json),
# `rvec logits` (fast path against the f64 reference, --json) and `rvec bench --json`.
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$RVEC" synth --preset tiny-qwen2 --seed 3 --dtype bf16 -o tiny -q > /dev/null

# Greedy generation is deterministic and streams the same text --json reports.
"$RVEC" generate tiny --prompt "The quick brown fox" --max-tokens 16 -q > a.txt
"$RVEC" generate tiny --prompt "The quick brown fox" --max-tokens 16 -q > b.txt
cmp -s a.txt b.txt || fail "greedy generation differs between runs"
"$RVEC" generate tiny --prompt "The quick brown fox" --max-tokens 16 --json > a.json
python3 - a.json a.txt <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
streamed = open(sys.argv[2], encoding="utf-8", errors="replace").read()
assert streamed.endswith("\n")
assert j["text"] == streamed[:-1], (j["text"], streamed)
assert j["finish_reason"] in ("stop", "length")
assert len(j["tokens"]) <= 16 and j["prompt_tokens"] > 0
PY

# Seeded sampling: same seed, same text; chat template path works.
"$RVEC" generate tiny --chat "Hello" --system "Be brief" --temperature 0.9 --top-p 0.9 \
  --top-k 40 --seed 5 --max-tokens 12 -q > s1.txt
"$RVEC" generate tiny --chat "Hello" --system "Be brief" --temperature 0.9 --top-p 0.9 \
  --top-k 40 --seed 5 --max-tokens 12 -q > s2.txt
cmp -s s1.txt s2.txt || fail "seeded sampling is not reproducible"

# Logits: the fast path agrees with the scalar f64 reference.
"$RVEC" logits tiny --ids 5,17,33,2,101 --all-positions --json > fast.json
"$RVEC" logits tiny --ids 5,17,33,2,101 --all-positions --reference --json > ref.json
python3 - fast.json ref.json <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a["positions"] == [0, 1, 2, 3, 4] and b["reference"] is True
worst = max(abs(x - y) for ra, rb in zip(a["logits"], b["logits"]) for x, y in zip(ra, rb))
assert worst <= 1e-4, worst
assert len(a["logits"][0]) > 100
PY
"$RVEC" logits tiny --text "Hello" -q | grep -q "position" || fail "human logits output"

# Bad input: clear errors, non-zero exit.
set +e
"$RVEC" logits tiny --ids 1,x,3 2> err.txt; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "bad --ids should exit 2 (got $rc)"
grep -q "'x' is not a token id" err.txt || fail "bad --ids message"
set +e
"$RVEC" logits tiny --ids 1,99999999 2> err2.txt; rc=$?
set -e
[ "$rc" -ne 0 ] || fail "out-of-vocabulary id accepted"
grep -q "outside the vocabulary" err2.txt || fail "out-of-vocabulary message"
set +e
"$RVEC" generate does-not-exist --prompt hi 2> err3.txt; rc=$?
set -e
[ "$rc" -ne 0 ] || fail "missing model accepted"

# Bench reports the fields users read.
"$RVEC" bench tiny --prompt-tokens 16 --gen-tokens 4 --batch 1,2 --repeats 1 \
  --bandwidth-mb 16 --json -q > bench.json
python3 - bench.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for key in ("prefill", "decode", "simd_target", "peak_rss_bytes", "read_bandwidth_gb_per_s",
            "load_seconds"):
    assert key in j, key
assert [d["batch"] for d in j["decode"]] == [1, 2]
assert j["prefill"]["tokens_per_s"] > 0 and 0 < j["decode"][0]["bandwidth_fraction"]
assert j["context"] == 0 and j["decode"][0]["context"] == 0
PY

# Decode at depth: the context is prefilled once, every sequence decodes after it.
"$RVEC" bench tiny --prompt-tokens 0 --context 37 --gen-tokens 4 --batch 1,3 --repeats 1 \
  --bandwidth-mb 16 --json -q > bench_ctx.json
python3 - bench_ctx.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert "prefill" not in j and j["context"] == 37
assert [(d["batch"], d["context"]) for d in j["decode"]] == [(1, 37), (3, 37)], j["decode"]
assert all(d["tokens_per_s"] > 0 for d in j["decode"])
assert j["kv_cache_peak_bytes"] > 0
PY
set +e
"$RVEC" bench tiny --prompt-tokens 0 --context 40000 --gen-tokens 4 -q 2> err_ctx.txt
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a context past the model's positions was accepted"
grep -q "positions" err_ctx.txt || fail "unclear --context error: $(cat err_ctx.txt)"

# bf16 activations: the choice is recorded in results.json, and an unfinished run directory made
# with the other precision is not resumed with it.
DATA="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:?run through ctest, or set RVEC_TEST_DATA}}"
"$RVEC" eval tiny --tasks sciq --limit 3 --bf16-activations --data-dir "$DATA" -o run_bf16 \
  -q > /dev/null
python3 - run_bf16/results.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["config"]["activations"] == "bf16", r["config"]
PY
rm run_bf16/results.json
set +e
"$RVEC" eval tiny --tasks sciq --limit 3 --data-dir "$DATA" -o run_bf16 -q > /dev/null 2> err.txt
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a bf16-activation run was resumed with f32 activations"
grep -q "different settings" err.txt || fail "unclear error: $(cat err.txt)"
echo OK
