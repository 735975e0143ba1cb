#!/usr/bin/env bash
# Engine speed against llama.cpp in one run, on the same weights and threads (issue 19's table):
# prefill 512, decode at batch 1 (exact and --bf16-activations), decode at depth (--context, as
# llama-bench -d), and rvec's batch-16 aggregate decode. llama.cpp is the user's build: pass its
# llama-bench (the figures in docs/status.md used release 0.4.0 built with -DGGML_NATIVE=ON
# -DLLAMA_CURL=OFF). The model is exported once to a bf16 GGUF beside it.
#
# Usage: scripts/bench_llamacpp.sh LLAMA_BENCH [RVEC_BINARY] [MODEL_DIR] [THREADS] [DEPTHS]
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
cd "$work"
LD_LIBRARY_PATH="$(dirname "$llama_bench"):${LD_LIBRARY_PATH:-}" "$llama_bench" -m "$gguf" \
  -t "$threads" -p 512 -n 64 -r 2 -d "0,$depths" -o json > llama.json
common=(--threads "$threads" --repeats 2 -q --json)
"$rvec" bench "$model" --prompt-tokens 512 --gen-tokens 64 --batch 1,16 "${common[@]}" > exact.json
"$rvec" bench "$model" --prompt-tokens 512 --gen-tokens 64 --batch 1 --bf16-activations \
  "${common[@]}" > bf16.json
IFS=, read -ra ds <<< "$depths"
for d in "${ds[@]}"; do
  "$rvec" bench "$model" --prompt-tokens 0 --gen-tokens 64 --batch 1 --context "$d" \
    "${common[@]}" > "depth$d.json"
done
python3 - "$depths" <<'PY'
import json, sys
depths = [int(d) for d in sys.argv[1].split(",")]
llama = json.load(open("llama.json"))
def ll(n_prompt, n_gen, depth):
    for r in llama:
        if r["n_prompt"] == n_prompt and r["n_gen"] == n_gen and r.get("n_depth", 0) == depth:
            return r["avg_ts"]
    return None
exact, bf16 = json.load(open("exact.json")), json.load(open("bf16.json"))
dec = {d["batch"]: d for d in exact["decode"]}
rows = [
    ("prefill 512, exact", exact["prefill"]["tokens_per_s"], ll(512, 0, 0)),
    ("prefill 512, bf16 activations", bf16["prefill"]["tokens_per_s"], ll(512, 0, 0)),
    ("decode b=1, exact", dec[1]["tokens_per_s"], ll(0, 64, 0)),
    ("decode b=1, bf16 activations", bf16["decode"][0]["tokens_per_s"], ll(0, 64, 0)),
]
for d in depths:
    r = json.load(open(f"depth{d}.json"))
    rows.append((f"decode b=1 at depth {d}, exact", r["decode"][0]["tokens_per_s"], ll(0, 64, d)))
out = {"read_bandwidth_gb_per_s": exact["read_bandwidth_gb_per_s"],
       "bandwidth_cap_tokens_per_s": exact["bandwidth_cap_tokens_per_s"],
       "decode_b1_fraction_of_cap": dec[1]["bandwidth_fraction"],
       "fma_peak_gflops": exact.get("fma_peak_gflops"),
       "prefill_exact_fma_peak_fraction": exact["prefill"].get("fma_peak_fraction"),
       "batch16_aggregate_over_b1": dec[16]["tokens_per_s"] / dec[1]["tokens_per_s"],
       "rows": [{"path": p, "rvec": a, "llama_cpp": b, "ratio": a / b if b else None}
                for p, a, b in rows]}
print(json.dumps(out, indent=2))
for p, a, b in rows:
    print(f"{p:34s} rvec {a:8.1f} t/s  llama.cpp {b or 0:8.1f} t/s  {a / b if b else 0:5.2f}x",
          file=sys.stderr)
PY
