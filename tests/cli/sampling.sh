#!/usr/bin/env bash
# CLI test of repeated sampling (`rvec eval --samples K --temperature T --seed S`): K generations
# per doc, avg@K / pass@k / maj@K in results.json, samples files byte-identical across reruns,
# --max-batch, --chunk, --threads and resume, re-scoring by replay, and `rvec report` columns.
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
DATA="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:?run through ctest, or set RVEC_TEST_DATA}}"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$RVEC" synth --preset tiny-qwen2 --seed 3 --dtype bf16 -o tiny -q > /dev/null
run() {  # run DIR [extra flags]: 3 gsm8k docs, 4 samples at temperature 1, seed 7
  local dir="$1"
  shift
  "$RVEC" eval tiny --tasks gsm8k --limit 3 --samples 4 --temperature 1 --seed 7 \
    --data-dir "$DATA" -o "$dir" --quiet "$@" > /dev/null
}

run s1
python3 - s1 <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(d + "/results.json"))
g = r["results"]["gsm8k"]
for f in ("strict-match", "flexible-extract"):
    for m in ("exact_match", "avg@4", "pass@2", "pass@4", "maj@4"):
        assert f"{m},{f}" in g and f"{m}_stderr,{f}" in g, (m, f, sorted(g))
    assert g[f"exact_match,{f}"] == g[f"avg@4,{f}"]
assert r["configs"]["gsm8k"]["repeats"] == 4
assert r["configs"]["gsm8k"]["generation_kwargs"]["do_sample"] is True
assert r["config"]["sampling"] == {"samples": 4, "temperature": 1.0, "top_p": None, "seed": 7}
recs = [json.loads(l) for l in open(d + "/samples_gsm8k.jsonl")]
assert [x["doc_id"] for x in recs] == [0, 1, 2]
for x in recs:
    assert len(x["raw_outputs"]) == 4 and len(x["finish_reasons"]) == 4
    assert x["raw_output"] == x["raw_outputs"][0]
    assert len(x["filtered_samples"]) == 4 and len(x["sample_metrics"]) == 4
    v = [s["exact_match,strict-match"] for s in x["sample_metrics"]]
    assert x["metrics"]["avg@4,strict-match"] == sum(v) / 4
    assert x["metrics"]["pass@4,strict-match"] == float(any(v))
# Samples are different draws, not one greedy answer repeated.
assert any(len(set(x["raw_outputs"])) > 1 for x in recs), "all samples identical"
PY

# Reproducible: a rerun, another batch size / chunk / thread count give the same bytes.
run s2
cmp s1/samples_gsm8k.jsonl s2/samples_gsm8k.jsonl || fail "rerun differs"
run s3 --max-batch 2 --chunk 1 --threads 1
cmp s1/samples_gsm8k.jsonl s3/samples_gsm8k.jsonl || fail "--max-batch 2 --chunk 1 differs"
# Another seed gives other samples.
run s4 --sampling-seed 8
if cmp -s s1/samples_gsm8k.jsonl s4/samples_gsm8k.jsonl; then fail "--sampling-seed ignored"; fi

# Resume: a run cut after its first doc finishes to the same samples file.
mkdir s5
cp s1/run.json s5/
head -n 1 s1/samples_gsm8k.jsonl > s5/samples_gsm8k.jsonl
run s5 --chunk 1
cmp s1/samples_gsm8k.jsonl s5/samples_gsm8k.jsonl || fail "resumed run differs"
# A directory of another sampling setting is not resumed.
rm s5/results.json
set +e
"$RVEC" eval tiny --tasks gsm8k --limit 3 --samples 2 --temperature 1 --seed 7 \
  --data-dir "$DATA" -o s5 --quiet > /dev/null 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "resumed a run with other sampling settings"

# Replay with hand-made answers: doc 0 right 3 of 4 times, doc 1 once (outvoted), doc 2 never.
python3 - "$DATA" > answers.jsonl <<'PY'
import gzip, json, os, sys
path = sys.argv[1] + "/gsm8k/test.jsonl"
f = open(path) if os.path.exists(path) else gzip.open(path + ".gz", "rt")
docs = [json.loads(l) for l in f][:3]
right = [[1, 1, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]
for i, d in enumerate(docs):
    outs = [d["answer"] if ok else "So.\n#### 999999" for ok in right[i]]
    print(json.dumps({"task": "gsm8k", "doc_id": i, "outputs": outs}))
PY
"$RVEC" eval --backend replay --responses answers.jsonl --tasks gsm8k --limit 3 --samples 4 \
  --data-dir "$DATA" -o r1 --quiet > /dev/null
python3 - r1/results.json <<'PY'
import json, math, sys
g = json.load(open(sys.argv[1]))["results"]["gsm8k"]
k = "strict-match"
def close(a, b): return abs(a - b) < 1e-12
per_doc = [0.75, 0.25, 0.0]
assert close(g[f"avg@4,{k}"], 1 / 3), g
mu = 1 / 3
se = math.sqrt(sum((x - mu) ** 2 for x in per_doc) / 2) / math.sqrt(3)
assert close(g[f"avg@4_stderr,{k}"], se), (g, se)
# pass@2 per doc: 1 - C(1,2)/C(4,2) = 1, 1 - C(3,2)/C(4,2) = 0.5, 0.
assert close(g[f"pass@2,{k}"], 1.5 / 3), g
assert close(g[f"pass@4,{k}"], 2 / 3), g
assert close(g[f"maj@4,{k}"], 1 / 3), g  # doc 1: "999999" wins 3 to 1
PY
# Re-scoring a sampled run directory reads every sample back.
"$RVEC" eval --backend replay --responses r1 --tasks gsm8k --limit 3 --samples 4 \
  --data-dir "$DATA" -o r2 --quiet > /dev/null
cmp r1/samples_gsm8k.jsonl r2/samples_gsm8k.jsonl || fail "replayed samples differ"

# The report shows avg@4 (not the repeated exact_match column), pass@4 and maj@4, and pairs
# avg@4 by per-document mean accuracy with the permutation test.
"$RVEC" report r1 s1 -o report.md --quiet
grep -q "avg@4,strict-match" report.md || fail "report lacks avg@4"
grep -q "maj@4,strict-match" report.md || fail "report lacks maj@4"
if grep -q "exact_match,strict-match" report.md; then fail "report repeats exact_match"; fi
grep -q "permutation" report.md || fail "report does not name the permutation test"
"$RVEC" report r1 s1 --json | python3 -c "
import json, sys
m = json.load(sys.stdin)['runs'][1]['metrics']['gsm8k']
a = m['avg@4,strict-match']
assert a['paired_samples'] == 3 and a['mcnemar_p'] is None, a
assert 0 < a['permutation_p'] <= 1, a
assert m['pass@4,strict-match']['mcnemar_p'] is not None, m
"

# rvec transfer: every variant sampled K times; the report shows avg@2 with the paired test.
"$RVEC" synth --from tiny --seed 21 --perturb-std 0.004 -o sft -q > /dev/null
"$RVEC" synth --from sft --seed 22 --perturb-std 0.004 -o grpo -q > /dev/null
"$RVEC" transfer --sft sft --grpo grpo --target tiny --alphas 1 --controls none --tasks gsm8k \
  --limit 2 --samples 2 --temperature 1 --seed 7 --data-dir "$DATA" -o tr --quiet > /dev/null
python3 - tr <<'PY'
import json, sys
d = sys.argv[1]
rep = json.load(open(d + "/report.json"))
assert rep["inputs"]["sampling"] == {"samples": 2, "temperature": 1.0, "top_p": None, "seed": 7}
metrics = [c["metric"] for c in rep["columns"]]
assert "avg@2,strict-match" in metrics and "maj@2,strict-match" in metrics, metrics
assert "exact_match,strict-match" not in metrics, metrics
for variant in ("target", "alpha_1"):
    recs = [json.loads(l) for l in open(f"{d}/runs/{variant}/samples_gsm8k.jsonl")]
    assert all(len(r["raw_outputs"]) == 2 for r in recs), variant
PY
grep -q "avg@2" tr/report.md || fail "transfer report lacks avg@2"

# Bad values are refused (exit 2) with the flag named.
for bad in "--samples 0" "--temperature -1" "--top-p 1.5"; do
  set +e
  # shellcheck disable=SC2086
  "$RVEC" eval tiny --tasks gsm8k --limit 1 $bad --data-dir "$DATA" -o bad > /dev/null 2> err.txt
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "$bad: expected exit 2, got $rc"
  grep -q -- "${bad%% *}" err.txt || fail "$bad: error does not name the flag"
done
# Greedy K > 1 is allowed but warned about.
"$RVEC" eval tiny --tasks gsm8k --limit 1 --samples 2 --data-dir "$DATA" -o greedy2 --quiet \
  > /dev/null 2> err.txt
grep -q "identical answers" err.txt || fail "no warning for greedy --samples 2"

# One sample at temperature 0 is today's greedy run: same run.json and samples file.
"$RVEC" eval tiny --tasks gsm8k --limit 2 --data-dir "$DATA" -o g1 --quiet > /dev/null
"$RVEC" eval tiny --tasks gsm8k --limit 2 --samples 1 --temperature 0 --data-dir "$DATA" \
  -o g2 --quiet > /dev/null
cmp g1/samples_gsm8k.jsonl g2/samples_gsm8k.jsonl || fail "greedy samples changed"
cmp g1/run.json g2/run.json || fail "greedy run.json changed"
python3 -c "
import json; r = json.load(open('g1/results.json'))
assert 'repeats' not in r['configs']['gsm8k'] and 'sampling' not in r['config']
assert sorted(k for k in r['results']['gsm8k'] if '@' in k) == []"
echo OK
