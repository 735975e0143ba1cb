#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs rvec on built-in demo models
# (or on the models given as arguments, passed through to `rvec inspect`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
if (($#)); then
  exec ./build/cli/rvec inspect "$@"
fi
out="${RVEC_DEMO_DIR:-build/demo}"
./build/cli/rvec synth --preset tiny-qwen2 --seed 1 --dtype bf16 -o "$out/tiny-qwen2" --force
./build/cli/rvec inspect "$out/tiny-qwen2"
