#!/usr/bin/env bash
# The main job: installs dependencies, builds the rvec executable, and runs the reasoning-vector
# transfer experiment. With no arguments it runs `rvec demo` on built-in miniature models and the
# real GSM8K / SciQ / BBH test documents that ship in testdata/ (offline); with arguments it runs
# `rvec transfer ARGS...` (e.g. --sft DIR --grpo DIR --target DIR --tasks gsm8k -o WORKDIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --main
if (($#)); then
  exec ./build/cli/rvec transfer "$@"
fi
exec ./build/cli/rvec demo -o "${RVEC_DEMO_DIR:-build/demo}"
