#!/usr/bin/env bash
# `rvec transfer --backend openai --serve-cmd`: a command that starts `rvec serve` per variant
# (the server is detected, the echo log-likelihood probe passes, the scores equal the local
# backend's, {gguf} exports are made first), a command that exits at once, and one that never
# serves (timeout); after each, no server process is left. With RVEC_LLAMA_SERVER=/path/to/
# llama-server (not in CI: it is neither a Debian nor an npm package) the same transfer also runs
# through a real llama-server on the GGUF exports.
# Usage: serve_cmd.sh RVEC_BINARY SCRATCH_DIR
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
scratch="$(cd "$scratch" && pwd)"
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
# expect_failure DESCRIPTION MESSAGE COMMAND...: the command fails and says MESSAGE.
expect_failure() {
  local what="$1" message="$2"
  shift 2
  if "$@" >"$scratch/out" 2>"$scratch/err"; then
    echo "FAIL $what: succeeded"
    fail=1
  elif ! grep -qF -- "$message" "$scratch/err"; then
    echo "FAIL $what: the error does not say '$message':"
    tail -5 "$scratch/err"
    fail=1
  fi
}
# no_process_left MARKER: no process's command line contains MARKER.
no_process_left() {
  sleep 0.5
  if pgrep -f -- "$1" >/dev/null; then
    echo "FAIL a server process is still running after rvec returned:"
    pgrep -af -- "$1"
    fail=1
  fi
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

m="$scratch/models"
run "synth base" "$rvec" synth --preset tiny-qwen2 --seed 3 -o "$m/base" --quiet
run "synth sft" "$rvec" synth --from "$m/base" --seed 21 --perturb-std 0.02 -o "$m/sft" --quiet
run "synth grpo" "$rvec" synth --from "$m/sft" --seed 22 --perturb-std 0.02 -o "$m/grpo" --quiet
run "synth instruct" "$rvec" synth --from "$m/base" --seed 23 --perturb-std 0.02 -o "$m/instruct" --quiet
common=(--sft "$m/sft" --grpo "$m/grpo" --target "$m/instruct" --alphas 1 --controls none
        --tasks gsm8k,sciq --limit 3 --data-dir "$data" --quiet)

# 1. A command that serves: every variant is evaluated through `rvec serve`, then stopped.
port="$(free_port)"
serve="$rvec serve {model} --port {port} --served-model-name {name} --kv-dtype f32 --quiet"
run "transfer through rvec serve" "$rvec" transfer "${common[@]}" -o "$scratch/served" \
  --backend openai --endpoint "http://127.0.0.1:$port/v1" --port "$port" --serve-cmd "$serve"
no_process_left "$scratch/served"
no_process_left "$m/instruct --port"
run "transfer local" "$rvec" transfer "${common[@]}" -o "$scratch/local" --kv-dtype f32
python3 - "$scratch" <<'PY' || fail=1
import json, os, sys
s = sys.argv[1]
for variant in ("target", "alpha_1"):
    served = json.load(open(f"{s}/served/runs/{variant}/results.json"))
    config = served["config"]["backend_config"]
    assert config["server"]["kind"] == "rvec", config["server"]
    assert config["server"]["detected_by"] == "/v1/models owned_by", config["server"]
    assert config["loglikelihood_route"] == "echo", config
    local = json.load(open(f"{s}/local/runs/{variant}/results.json"))
    assert served["results"] == local["results"], (variant, served["results"], local["results"])
    lls = {}
    for kind in ("served", "local"):
        for line in open(f"{s}/{kind}/runs/{variant}/samples_sciq.jsonl"):
            d = json.loads(line)
            lls.setdefault(d["doc_id"], []).append(d["loglikelihoods"])
    worst = max(abs(a - b) for pair in lls.values() for a, b in zip(*pair))
    assert worst < 1e-3, (variant, worst)
    print(f"{variant}: rvec serve matches the local backend (max |dLL| {worst:.2g})")
PY

# 2. {gguf}: each variant is exported (f32) before its command starts, and the export is a step.
port="$(free_port)"
gguf_cmd="test -s {gguf} && exec $rvec serve {model} --port {port} --served-model-name {name} --quiet"
run "transfer with {gguf}" "$rvec" transfer "${common[@]}" -o "$scratch/gguf" --backend openai \
  --endpoint "http://127.0.0.1:$port/v1" --port "$port" --serve-cmd "$gguf_cmd" --gguf-dtype f32
for v in target alpha_1; do
  [ -s "$scratch/gguf/gguf/$v.f32.gguf" ] || { echo "FAIL no GGUF export for $v"; fail=1; }
  grep -q "\"gguf_$v\"" "$scratch/gguf/state.json" || { echo "FAIL gguf_$v is not a step"; fail=1; }
done
no_process_left "$scratch/gguf"

# 3. A command that exits at once: a clear error, no waiting for the timeout.
port="$(free_port)"
expect_failure "serve command that exits" "exited before serving 'target'" \
  "$rvec" transfer "${common[@]}" -o "$scratch/exits" --backend openai \
  --endpoint "http://127.0.0.1:$port/v1" --port "$port" --serve-cmd "exit 3" --serve-timeout 600

# 4. A command that never serves: a timeout error after --serve-timeout, and it is stopped.
port="$(free_port)"
marker="rvec-serve-cmd-test-$$"
expect_failure "serve command that never serves" "within --serve-timeout 3 s" \
  "$rvec" transfer "${common[@]}" -o "$scratch/silent" --backend openai \
  --endpoint "http://127.0.0.1:$port/v1" --port "$port" --serve-timeout 3 \
  --serve-cmd "python3 -c 'import time; time.sleep(600)' $marker"
no_process_left "$marker"

# 5. Optional: the real llama-server on the f32 GGUF exports, scored through its native route.
if [ -n "${RVEC_LLAMA_SERVER:-}" ]; then
  port="$(free_port)"
  llama="$RVEC_LLAMA_SERVER -m {gguf} --alias {name} --port {port} -c 4096 -np 1"
  run "transfer through llama-server" "$rvec" transfer "${common[@]}" -o "$scratch/llama" \
    --backend openai --endpoint "http://127.0.0.1:$port/v1" --port "$port" \
    --serve-cmd "$llama" --gguf-dtype f32
  no_process_left "$scratch/llama"
  python3 - "$scratch" <<'PY' || fail=1
import json, sys
s = sys.argv[1]
for variant in ("target", "alpha_1"):
    r = json.load(open(f"{s}/llama/runs/{variant}/results.json"))
    c = r["config"]["backend_config"]
    assert c["server"]["kind"] == "llamacpp", c["server"]
    assert c["loglikelihood_route"].startswith("llamacpp /completion"), c
    local = json.load(open(f"{s}/local/runs/{variant}/results.json"))
    assert r["results"]["sciq"] == local["results"]["sciq"], (variant, r["results"], local["results"])
    print(f"{variant}: llama-server sciq scores equal the local backend's")
PY
else
  echo "note: RVEC_LLAMA_SERVER is not set, so the real llama-server part (5) did not run"
fi

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "serve_cmd: OK"
