#!/usr/bin/env bash
# CLI test of `rvec eval` (replay backend), `rvec report` and `rvec data verify`: run directories,
# results.json shape, refusal to overwrite, resume, report outputs, clear data errors.
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
DATA="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:?run through ctest, or set RVEC_TEST_DATA}}"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Gold answers for the first 8 gsm8k docs, wrong ones for the next 4.
python3 - "$DATA" > gold.jsonl <<'PY'
import gzip, json, os, sys
path = sys.argv[1] + "/gsm8k/test.jsonl"
f = open(path) if os.path.exists(path) else gzip.open(path + ".gz", "rt")
docs = [json.loads(l) for l in f][:12]
for i, d in enumerate(docs):
    out = d["answer"] if i < 8 else "I do not know"
    print(json.dumps({"task": "gsm8k", "doc_id": i, "output": out}))
PY

"$RVEC" eval --backend replay --responses gold.jsonl --tasks gsm8k --limit 12 \
  --data-dir "$DATA" -o run_a --quiet > out_a.txt
grep -q "exact_match,strict-match" out_a.txt || fail "no metric table"
python3 - run_a/results.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g = r["results"]["gsm8k"]
assert abs(g["exact_match,strict-match"] - 8 / 12) < 1e-12, g
assert "exact_match_stderr,flexible-extract" in g
assert r["n-samples"]["gsm8k"] == {"original": 1319, "effective": 12}
assert r["versions"]["gsm8k"] == 3.0 and r["n-shot"]["gsm8k"] == 5
assert r["config"]["fewshot_seed"] == 1234 and r["config"]["rvec_version"]
PY
[ "$(wc -l < run_a/samples_gsm8k.jsonl)" -eq 12 ] || fail "samples count"

# A finished run directory is not overwritten (exit code 3), --force redoes it.
set +e
"$RVEC" eval --backend replay --responses gold.jsonl --tasks gsm8k --limit 12 \
  --data-dir "$DATA" -o run_a --quiet > /dev/null 2> err.txt
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "expected exit 3 for an existing run, got $rc"
grep -q "force" err.txt || fail "error does not mention --force"

# Re-scoring a previous run's samples (replay of a run directory) gives the same numbers.
"$RVEC" eval --backend replay --responses run_a --tasks gsm8k --limit 12 --data-dir "$DATA" \
  -o run_b --quiet --json > b.json
python3 -c "
import json; a=json.load(open('run_a/results.json')); b=json.load(open('b.json'))
assert a['results'] == b['results'], (a['results'], b['results'])"

# Report: Markdown, HTML with SVG, JSON.
"$RVEC" report run_a run_b -o report.md --html report.html --labels base,rescored --quiet
grep -q "rescored" report.md || fail "report.md lacks the row label"
grep -q "<svg" report.html || fail "report.html lacks charts"
"$RVEC" report run_a run_b --json | python3 -c "
import json,sys; r=json.load(sys.stdin); m=r['runs'][1]['metrics']['gsm8k']['exact_match,strict-match']
assert m['delta'] == 0 and m['mcnemar_p'] == 1.0, m"

# Missing data: a clear error naming `rvec data pull`.
set +e
"$RVEC" eval --backend replay --responses gold.jsonl --tasks sciq --data-dir empty_data \
  -o run_c --quiet 2> err2.txt
rc=$?
"$RVEC" data verify gsm8k --data-dir empty_data > /dev/null 2> err3.txt
rc3=$?
set -e
[ "$rc" -ne 0 ] || fail "missing data accepted"
grep -q "rvec data pull sciq" err2.txt || fail "missing-data error does not say how to get it"
[ "$rc3" -ne 0 ] || fail "data verify passed on an empty directory"
"$RVEC" data verify gsm8k bbh humaneval gsm_plus gsm_symbolic math --data-dir "$DATA" --quiet > /dev/null ||
  fail "vendored data fail verify"
echo "eval CLI OK"
