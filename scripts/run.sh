#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs the reasoning-vector transfer experiment.
# With no arguments it runs `rvec demo` on built-in miniature models; with arguments it runs
# `rvec transfer ARGS...` (e.g. --sft DIR --grpo DIR --target DIR --tasks gsm8k -o WORKDIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# Benchmark data: RVEC_DATA if set, else the shared data folder next to the checkout if present.
if [ -z "${RVEC_DATA:-}" ] && [ -d ../shared/data ]; then
  RVEC_DATA="$(cd ../shared/data && pwd)"
  export RVEC_DATA
fi
if (($#)); then
  exec ./build/cli/rvec transfer "$@"
fi
exec ./build/cli/rvec demo -o "${RVEC_DEMO_DIR:-build/demo}"
