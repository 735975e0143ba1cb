#!/usr/bin/env bash
# Installs dependencies, builds everything, and runs the whole test suite (ctest prints its
# summary). Tests read the data vendored in testdata/ (RVEC_TEST_DATA overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
