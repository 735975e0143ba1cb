#!/usr/bin/env bash
# `rvec transfer` end to end on tiny synth models: local backend, then the replay backend on the
# local run's saved outputs; the report's table must equal the per-run results.json numbers, the
# control row must be present, and a rerun must reuse every step.
# Usage: transfer.sh RVEC_BINARY SCRATCH_DIR
set -u
rvec="$1"
scratch="$2"
data="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:?run through ctest, or set RVEC_TEST_DATA}}"
if [ ! -d "$data/gsm8k" ] || [ ! -d "$data/sciq" ]; then
  echo "FAIL: benchmark data missing under $data (gsm8k, sciq needed)"
  exit 1
fi
rm -rf "$scratch"
mkdir -p "$scratch"
fail=0
run() {  # run DESCRIPTION COMMAND...
  local what="$1"
  shift
  if ! "$@" >"$scratch/out" 2>"$scratch/err"; then
    echo "FAIL $what"
    cat "$scratch/err" "$scratch/out" | tail -30
    fail=1
    return 1
  fi
}

m="$scratch/models"
run "synth base" "$rvec" synth --preset tiny-qwen2 --seed 3 --dtype bf16 -o "$m/base" --quiet
run "synth sft" "$rvec" synth --from "$m/base" --seed 21 --perturb-std 0.004 -o "$m/sft" --quiet
run "synth grpo" "$rvec" synth --from "$m/sft" --seed 22 --perturb-std 0.004 -o "$m/grpo" --quiet
run "synth instruct" "$rvec" synth --from "$m/base" --seed 23 --perturb-std 0.004 -o "$m/instruct" --quiet

loud=(--sft "$m/sft" --grpo "$m/grpo" --target "$m/instruct" --alphas 1,-1 --tasks gsm8k,sciq
      --limit 3 --data-dir "$data")
common=("${loud[@]}" --quiet)
run "transfer local" "$rvec" transfer "${common[@]}" -o "$scratch/local"

check_report() {  # check_report WORKDIR: report cells equal results.json, control row present
  python3 - "$1" <<'PY'
import json, math, sys, os
work = sys.argv[1]
rep = json.load(open(os.path.join(work, "report.json")))
ids = [r["variant"] for r in rep["rows"]]
assert ids[0] == "target", ids
assert "alpha_1" in ids and "alpha_-1" in ids, ids
assert any(i.startswith("control_random_s0_alpha_") for i in ids), ids
assert rep["columns"], "no columns"
for row in rep["rows"]:
    res = json.load(open(os.path.join(work, "runs", row["variant"], "results.json")))
    for col, cell in zip(rep["columns"], row["cells"]):
        entry = res["groups"].get(col["task"]) or res["results"][col["task"]]
        want = entry[col["metric"]]
        assert cell is not None, (row["variant"], col)
        assert math.isclose(cell["value"], want, rel_tol=0, abs_tol=1e-12), (row["variant"], col, cell, want)
        if row["variant"] != "target":
            base = json.load(open(os.path.join(work, "runs", "target", "results.json")))
            bentry = base["groups"].get(col["task"]) or base["results"][col["task"]]
            assert math.isclose(cell["delta"], want - bentry[col["metric"]], abs_tol=1e-12)
            assert cell["p_value"] is None or 0 <= cell["p_value"] <= 1
assert rep["controls"], "no control comparison"
md = open(os.path.join(work, "report.md")).read()
assert "| variant |" in md and "control" in md
assert "<svg" in open(os.path.join(work, "report.html")).read()
print("report ok:", len(rep["rows"]), "rows,", len(rep["columns"]), "columns")
PY
}
run "report local" check_report "$scratch/local"

# A rerun reuses every step (the step log goes to stderr without --quiet).
run "transfer rerun" "$rvec" transfer "${loud[@]}" -o "$scratch/local"
reused=$(grep -c 'reused' "$scratch/err")
if [ "$reused" -lt 8 ]; then  # the vector, 3 models and 4 evaluations
  echo "FAIL rerun reused only $reused steps"
  cat "$scratch/err"
  fail=1
fi

# Replay: each variant's saved samples become its responses; the table must be identical.
mkdir -p "$scratch/responses"
for run_dir in "$scratch/local/runs"/*/; do
  id=$(basename "$run_dir")
  cat "$run_dir"/samples_*.jsonl >"$scratch/responses/$id.jsonl"
done
run "transfer replay" "$rvec" transfer "${common[@]}" --backend replay \
  --responses-dir "$scratch/responses" -o "$scratch/replay"
run "report replay" check_report "$scratch/replay"
python3 - "$scratch/local/report.json" "$scratch/replay/report.json" <<'PY' || fail=1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ca = [[c and c["value"] for c in r["cells"]] for r in a["rows"]]
cb = [[c and c["value"] for c in r["cells"]] for r in b["rows"]]
if ca != cb:
    print("FAIL replay table differs from local:", ca, cb)
    sys.exit(1)
PY

# Bad input: a missing target is a clear error and writes no report.
"$rvec" transfer --sft "$m/sft" --grpo "$m/grpo" --target "$m/nope" --tasks gsm8k \
  --data-dir "$data" -o "$scratch/bad" --quiet >"$scratch/out" 2>"$scratch/err"
if [ $? -eq 0 ] || ! grep -q "rvec: error:" "$scratch/err" || [ -e "$scratch/bad/report.md" ]; then
  echo "FAIL missing target not reported"
  fail=1
fi

if [ "$fail" -eq 0 ]; then echo "transfer: all checks passed"; fi
exit "$fail"
