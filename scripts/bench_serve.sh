#!/usr/bin/env bash
# Benchmark of `rvec serve` under concurrent clients against `rvec eval --backend local` on the
# same work: gsm8k prompts (8-shot) generated greedily, once in-process, once through the server
# by `rvec eval --backend openai --concurrency C`. Reports requests/s and generated tokens/s of
# both, their ratio, the server's peak memory under the load (VmHWM and sampled RssAnon), and
# checks that both runs produced the same text.
#
# Usage: scripts/bench_serve.sh [RVEC_BINARY] [MODEL_DIR] [DOCS] [GEN_TOKENS] [CONCURRENCY]
# MODEL_DIR defaults to a synth qwen2.5-0.5b (bf16) made once in /tmp/rvec_bench_serve.
set -euo pipefail
rvec="$(realpath "${1:-build/cli/rvec}")"
work=/tmp/rvec_bench_serve
mkdir -p "$work"
model="${2:-$work/q05}"
docs="${3:-32}"
gen="${4:-64}"
conc="${5:-16}"
data="$(cd "$(dirname "$0")/.." && pwd)/testdata"
if [[ ! -f "$model/model.safetensors" && ! -f "$model/model.safetensors.index.json" ]]; then
  "$rvec" synth --preset qwen2.5-0.5b --dtype bf16 -o "$model" -q
fi
cd "$work"
rm -rf local remote server.out server.err mem.txt
common=(--tasks gsm8k --limit "$docs" --max-gen-tokens "$gen" --data-dir "$data" -q)

t0=$(date +%s.%N)
"$rvec" eval "$model" "${common[@]}" --max-batch "$conc" -o local > /dev/null
t1=$(date +%s.%N)

"$rvec" serve "$model" --port 0 --json --max-batch "$conc" --served-model-name m \
  > server.out 2> server.err &
pid=$!
trap 'kill -TERM $pid 2> /dev/null || true' EXIT
until [[ -s server.out ]]; do sleep 0.1; done
url=$(python3 -c 'import json; print(json.loads(open("server.out").readline())["url"])')
# Sample the server's anonymous memory while it works (VmHWM includes the mapped weights).
(while kill -0 $pid 2> /dev/null; do grep -E '^(RssAnon|VmHWM)' /proc/$pid/status >> mem.txt ||
  true; sleep 0.2; done) &
t2=$(date +%s.%N)
"$rvec" eval "$model" --backend openai --endpoint "$url" --served-model m --concurrency "$conc" \
  "${common[@]}" -o remote > /dev/null
t3=$(date +%s.%N)
kill -TERM $pid
wait $pid || true
trap - EXIT

python3 - "$t0" "$t1" "$t2" "$t3" "$docs" "$conc" <<'PY'
import json, re, sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
docs, conc = int(sys.argv[5]), int(sys.argv[6])
rows = lambda run: [json.loads(l) for l in open(f"{run}/samples_gsm8k.jsonl")]
a, b = rows("local"), rows("remote")
same = sum(x["raw_output"] == y["raw_output"] for x, y in zip(a, b))
tokens = sum(int(m) for m in re.findall(r"completion_tokens=(\d+)", open("server.err").read()))
anon = [int(m) for m in re.findall(r"RssAnon:\s+(\d+)", open("mem.txt").read())]
hwm = [int(m) for m in re.findall(r"VmHWM:\s+(\d+)", open("mem.txt").read())]
local_s, serve_s = t1 - t0, t3 - t2
out = {
    "docs": docs, "concurrency": conc, "identical_outputs": same, "completion_tokens": tokens,
    "local": {"seconds": local_s, "requests_per_s": docs / local_s, "tokens_per_s": tokens / local_s},
    "serve": {"seconds": serve_s, "requests_per_s": docs / serve_s, "tokens_per_s": tokens / serve_s,
              "peak_rss_anon_mb": max(anon) / 1024 if anon else None,
              "vm_hwm_mb": max(hwm) / 1024 if hwm else None},
    "serve_over_local": local_s / serve_s,
}
print(json.dumps(out, indent=2))
PY
