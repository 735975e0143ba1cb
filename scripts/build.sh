#!/usr/bin/env bash
# Configures and builds rvec (Release) into ./build.
# Usage: scripts/build.sh [--main] [CMAKE_ARGS...]
#   --main: only the rvec executable (what the main job runs: no test binaries, no benchmarks);
#   otherwise everything, tests and benchmarks included. Both share ./build, so switching between
#   them recompiles nothing that is already built.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--main" ]; then
  shift
  bash scripts/deps.sh --main
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRVEC_BUILD_TESTS=OFF -DRVEC_BUILD_BENCHMARKS=OFF \
    "$@" >/dev/null
  cmake --build build -j"$(nproc)" --target rvec
else
  bash scripts/deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRVEC_BUILD_TESTS=ON -DRVEC_BUILD_BENCHMARKS=ON \
    "$@" >/dev/null
  cmake --build build -j"$(nproc)"
fi
