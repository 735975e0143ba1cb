#!/usr/bin/env bash
# CLI test of the competition-math tasks: `rvec eval --tasks math` on a tiny synth model (local
# engine, plain and --chat), results.json with the five tasks and the group, a replay of the run
# re-scoring to identical results, a handmade file of boxed gold answers scoring 1.0, and flag
# errors (--prompt-style, --max-gen-tokens).
# Usage: math.sh RVEC_BINARY SCRATCH_DIR
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
DATA="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:?run through ctest, or set RVEC_TEST_DATA}}"
MATH="$DATA/math"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$RVEC" synth --preset tiny-qwen2 --seed 3 --dtype bf16 -o tiny -q > /dev/null

# The local engine: every task and the group, 2 docs each, 16 new tokens. The data directory is
# laid out as `rvec data pull` writes it (DATA/math/math500/test.jsonl...).
"$RVEC" eval tiny --tasks math --limit 2 --max-gen-tokens 16 --data-dir "$DATA" -o run_a -q \
  > /dev/null
python3 - run_a <<'PY'
import json, sys
run = sys.argv[1]
r = json.load(open(run + "/results.json"))
tasks = ["math500", "aime24", "amc23", "minerva_math", "olympiadbench"]
for t in tasks + ["math"]:
    assert "exact_match,boxed" in r["results"][t], (t, r["results"].get(t))
    assert 0.0 <= r["results"][t]["exact_match,boxed"] <= 1.0
assert r["group_subtasks"]["math"] == tasks, r["group_subtasks"]
assert r["n-samples"]["math500"] == {"original": 500, "effective": 2}, r["n-samples"]
for t in tasks:
    cfg = r["configs"][t]
    assert cfg["generation_kwargs"]["max_gen_toks"] == 16, cfg
    assert cfg["generation_kwargs"]["until"] == ["</s>", "<|im_end|>", "<|endoftext|>"], cfg
    rows = [json.loads(l) for l in open(f"{run}/samples_{t}.jsonl")]
    assert len(rows) == 2, (t, len(rows))
    for s in rows:
        # The reference's qwen25-math-cot string, written out without a chat template.
        assert s["prompt"].startswith("<|im_start|>system\nPlease reason step by step"), s["prompt"]
        assert s["prompt"].endswith("<|im_end|>\n<|im_start|>assistant\n"), s["prompt"]
        assert isinstance(s["raw_output"], str) and "boxed" in s["filtered"], s
        assert s["target"] and "exact_match,boxed" in s["metrics"], s
PY
[ $? -eq 0 ] || fail "results of the local run"

# Replay of the run re-scores the saved answers to identical results (--data-dir naming the math
# folder itself this time).
"$RVEC" eval --backend replay --responses run_a --tasks math --limit 2 --max-gen-tokens 16 \
  --data-dir "$MATH" -o run_b -q --json > b.json
python3 -c "
import json; a=json.load(open('run_a/results.json')); b=json.load(open('b.json'))
assert a['results'] == b['results'], (a['results'], b['results'])"

# Handmade responses: the gold answer boxed (derived here from the raw rows as the reference's
# parse_ground_truth reads them) for docs 0-1, a wrong one for doc 2.
python3 - "$MATH" > gold.jsonl <<'PY'
import gzip, json, os, sys
def rows(name):
    p = os.path.join(sys.argv[1], name, "test.jsonl")
    f = open(p) if os.path.exists(p) else gzip.open(p + ".gz", "rt")
    return [json.loads(l) for l in f][:3]
def last_boxed(s):
    i = s.rindex("\\boxed{") + len("\\boxed{")
    depth, j = 1, i
    while depth:
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        j += 1
    return s[i:j - 1]
gold = {
    "math500": lambda d: d["answer"],
    "aime24": lambda d: d["answer"],
    "amc23": lambda d: str(int(d["answer"])),
    "minerva_math": lambda d: last_boxed(d["solution"]),
    "olympiadbench": lambda d: d["final_answer"][0].replace("$", ""),
}
for task, g in gold.items():
    for i, d in enumerate(rows(task)):
        out = "Thinking... so the answer is $\\boxed{%s}$." % g(d) if i < 2 else "\\boxed{\\text{no idea}}"
        print(json.dumps({"task": task, "doc_id": i, "output": out}))
PY
"$RVEC" eval --backend replay --responses gold.jsonl --tasks math --limit 3 --data-dir "$MATH" \
  -o run_gold -q --json > gold.json
python3 - <<'PY'
import json
r = json.load(open("gold.json"))["results"]
for t in ["math500", "aime24", "amc23", "minerva_math", "olympiadbench", "math"]:
    assert abs(r[t]["exact_match,boxed"] - 2 / 3) < 1e-12, (t, r[t])
PY
[ $? -eq 0 ] || fail "gold replay does not score 2/3"

# --chat with the default style, and a base-model style: the prompt follows the style.
"$RVEC" eval tiny --tasks aime24 --limit 1 --max-gen-tokens 4 --data-dir "$MATH" --chat \
  -o run_chat -q > /dev/null
grep -q 'Please reason step by step' run_chat/samples_aime24.jsonl || fail "chat prompt"
"$RVEC" eval --backend replay --responses gold.jsonl --tasks amc23 --limit 2 --data-dir "$MATH" \
  --prompt-style cot -o run_cot -q > /dev/null
python3 - <<'PY'
import json
s = json.loads(open("run_cot/samples_amc23.jsonl").readline())
assert s["prompt"].startswith("Question: ") and s["prompt"].endswith("\nAnswer:"), s["prompt"]
r = json.load(open("run_cot/results.json"))
assert r["config"]["prompt_style"] == "cot", r["config"]
assert r["configs"]["amc23"]["generation_kwargs"]["until"][-1] == "\n\nQuestion:"
PY
[ $? -eq 0 ] || fail "cot prompt style"

# `rvec transfer` takes the math tasks and passes --prompt-style / --max-gen-tokens to every run.
"$RVEC" synth --from tiny --seed 21 --perturb-std 0.004 -o sft -q > /dev/null
"$RVEC" synth --from sft --seed 22 --perturb-std 0.004 -o grpo -q > /dev/null
"$RVEC" transfer --sft sft --grpo grpo --target tiny --alphas 1 --tasks amc23 --limit 2 \
  --max-gen-tokens 4 --prompt-style cot --data-dir "$MATH" -o xfer -q > /dev/null
python3 - <<'PY'
import json, os
runs = os.listdir("xfer/runs")
assert "target" in runs and "alpha_1" in runs, runs
for v in runs:
    r = json.load(open(f"xfer/runs/{v}/results.json"))
    assert r["configs"]["amc23"]["generation_kwargs"]["max_gen_toks"] == 4, (v, r["configs"])
    s = json.loads(open(f"xfer/runs/{v}/samples_amc23.jsonl").readline())
    assert s["prompt"].startswith("Question: "), (v, s["prompt"])
rep = json.load(open("xfer/report.json"))
assert any(c["task"] == "amc23" and c["metric"] == "exact_match,boxed" for c in rep["columns"]), rep["columns"]
PY
[ $? -eq 0 ] || fail "transfer with the math tasks"

# Bad flags: clear errors, non-zero exit.
set +e
"$RVEC" eval --backend replay --responses gold.jsonl --tasks math --data-dir "$MATH" \
  --prompt-style pal -o run_bad -q 2> err1.txt
rc1=$?
"$RVEC" eval tiny --tasks math --data-dir "$MATH" --max-gen-tokens 100000000 -o run_bad2 -q \
  2> err2.txt
rc2=$?
set -e
[ "$rc1" -ne 0 ] && grep -q "qwen25-math-cot" err1.txt || fail "unknown --prompt-style accepted"
[ "$rc2" -ne 0 ] && grep -q "context" err2.txt || fail "--max-gen-tokens beyond the context"
echo "math CLI test passed"
