#!/usr/bin/env bash
# Engine speed against llama.cpp in one run, on the same weights and threads (issue 19's table):
# prefill 512, decode at batch 1 (exact and --bf16-activations), decode at depth (--context, as
# llama-bench -d), and rvec's batch-16 aggregate decode. llama.cpp is the user's build: pass its
# llama-bench (the figures in docs/status.md used release 0.4.0 built with -DGGML_NATIVE=ON
# -DLLAMA_CURL=OFF). The model is exported once to a bf16 GGUF beside it.
#
# Prefill 512 and batch-1 decode are measured in ROUNDS interleaved rounds (llama.cpp, rvec exact,
# rvec --bf16-activations, each once per round; default 3) and reported as medians: the read
# bandwidth of these machines drifts within minutes, so back-to-back blocks are not comparable.
#
# Usage: [ROUNDS=N] scripts/bench_llamacpp.sh LLAMA_BENCH [RVEC_BINARY] [MODEL_DIR] [THREADS] [DEPTHS]
#   MODEL_DIR defaults to a synth qwen2.5-0.5b (bf16) in /tmp/rvec_bench_llamacpp; DEPTHS is a
#   comma-separated list (default 4096).
set -euo pipefail
llama_bench="$(realpath "${1:?usage: scripts/bench_llamacpp.sh LLAMA_BENCH [RVEC] [MODEL] [THREADS] [DEPTHS]}")"
rvec="$(realpath "${2:-build/cli/rvec}")"
work=/tmp/rvec_bench_llamacpp
mkdir -p "$work"
model="${3:-$work/q05}"
threads="${4:-$(nproc)}"
depths="${5:-4096}"
if [[ ! -f "$model/model.safetensors" && ! -f "$model/model.safetensors.index.json" ]]; then
  "$rvec" synth --preset qwen2.5-0.5b --dtype bf16 -o "$model" -q
fi
gguf="$model.bf16.gguf"
[[ -f "$gguf" ]] || "$rvec" export gguf "$model" -o "$gguf" --dtype bf16 -q
rounds="${ROUNDS:-3}"
cd "$work"
rm -f ./*.json
llama() { LD_LIBRARY_PATH="$(dirname "$llama_bench"):${LD_LIBRARY_PATH:-}" "$llama_bench" "$@"; }
common=(--threads "$threads" --repeats 2 -q --json)
for ((i = 0; i < rounds; ++i)); do
  llama -m "$gguf" -t "$threads" -p 512 -n 64 -r 1 -o json > "round${i}_llama.json"
  "$rvec" bench "$model" --prompt-tokens 512 --gen-tokens 64 --batch 1 "${common[@]}" \
    > "round${i}_exact.json"
  "$rvec" bench "$model" --prompt-tokens 512 --gen-tokens 64 --batch 1 --bf16-activations \
    "${common[@]}" > "round${i}_bf16.json"
done
llama -m "$gguf" -t "$threads" -p 0 -n 64 -r 2 -d "$depths" -o json > llama.json
# Batch 16 against batch 1 of the same invocation.
"$rvec" bench "$model" --prompt-tokens 0 --gen-tokens 64 --batch 1,16 "${common[@]}" > exact16.json
"$rvec" bench "$model" --prompt-tokens 0 --gen-tokens 64 --batch 1,16 --bf16-activations \
  "${common[@]}" > bf16_16.json
IFS=, read -ra ds <<< "$depths"
for d in "${ds[@]}"; do
  "$rvec" bench "$model" --prompt-tokens 0 --gen-tokens 64 --batch 1 --context "$d" \
    "${common[@]}" > "depth$d.json"
done
python3 - "$depths" "$rounds" <<'PY'
import json, statistics, sys
depths = [int(d) for d in sys.argv[1].split(",")]
rounds = int(sys.argv[2])
load = lambda f: json.load(open(f))
llama = load("llama.json")
def ll(runs, n_prompt, n_gen, depth):
    for r in runs:
        if r["n_prompt"] == n_prompt and r["n_gen"] == n_gen and r.get("n_depth", 0) == depth:
            return r["avg_ts"]
    return None
R = [(load(f"round{i}_llama.json"), load(f"round{i}_exact.json"), load(f"round{i}_bf16.json"))
     for i in range(rounds)]
med = statistics.median
def row(path, ours, theirs):
    a, b = [ours(r) for r in R], [theirs(r) for r in R]
    return {"path": path, "rvec": med(a), "llama_cpp": med(b), "ratio": med(a) / med(b),
            "rvec_rounds": a, "llama_cpp_rounds": b}
rows = [
    row("prefill 512, exact", lambda r: r[1]["prefill"]["tokens_per_s"], lambda r: ll(r[0], 512, 0, 0)),
    row("prefill 512, bf16 activations", lambda r: r[2]["prefill"]["tokens_per_s"],
        lambda r: ll(r[0], 512, 0, 0)),
    row("decode b=1, exact", lambda r: r[1]["decode"][0]["tokens_per_s"], lambda r: ll(r[0], 0, 64, 0)),
    row("decode b=1, bf16 activations", lambda r: r[2]["decode"][0]["tokens_per_s"],
        lambda r: ll(r[0], 0, 64, 0)),
]
for d in depths:
    r = load(f"depth{d}.json")
    a, b = r["decode"][0]["tokens_per_s"], ll(llama, 0, 64, d)
    rows.append({"path": f"decode b=1 at depth {d}, exact", "rvec": a, "llama_cpp": b,
                 "ratio": a / b if b else None})
e16, b16 = ({d["batch"]: d["tokens_per_s"] for d in load(f)["decode"]}
            for f in ("exact16.json", "bf16_16.json"))
out = {"rounds": rounds,
       "read_bandwidth_gb_per_s": [r[1]["read_bandwidth_gb_per_s"] for r in R],
       "decode_b1_fraction_of_cap": [r[1]["decode"][0]["bandwidth_fraction"] for r in R],
       "fma_peak_gflops": [r[1].get("fma_peak_gflops") for r in R],
       "prefill_exact_fma_peak_fraction": [r[1]["prefill"].get("fma_peak_fraction") for r in R],
       "batch16_tokens_per_s": {"exact": e16[16], "bf16": b16[16]},
       "batch16_aggregate_over_b1": {"exact": e16[16] / e16[1], "bf16": b16[16] / b16[1]},
       "rows": rows}
print(json.dumps(out, indent=2))
for x in rows:
    a, b = x["rvec"], x["llama_cpp"]
    print(f"{x['path']:34s} rvec {a:8.1f} t/s  llama.cpp {b or 0:8.1f} t/s  {a / b if b else 0:5.2f}x",
          file=sys.stderr)
print(f"batch-16 aggregate over batch 1: exact {out['batch16_aggregate_over_b1']['exact']:.2f}x, "
      f"bf16 {out['batch16_aggregate_over_b1']['bf16']:.2f}x", file=sys.stderr)
PY
