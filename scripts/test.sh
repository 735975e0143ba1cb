#!/usr/bin/env bash
# Installs dependencies, builds everything, and runs the whole test suite (ctest prints its
# summary). Tests read the data vendored in testdata/ (RVEC_TEST_DATA overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# The interoperability peers of tests/cli/gguf.sh (node-llama-cpp's prebuilt llama.cpp,
# @huggingface/gguf), pinned by tests/interop/package-lock.json. --omit=optional skips the CUDA and
# Vulkan builds (the CPU one is a direct dependency); --ignore-scripts: nothing is downloaded or
# compiled after install. Reinstalled only when the lockfile changes.
interop=tests/interop
if ! cmp -s "$interop/package-lock.json" "$interop/node_modules/.rvec-lock" 2>/dev/null; then
  if (cd "$interop" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund >/dev/null); then
    cp "$interop/package-lock.json" "$interop/node_modules/.rvec-lock"
  else
    echo "rvec: npm ci in $interop failed (is the npm registry reachable?); cli_gguf will fail" >&2
  fi
fi
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
