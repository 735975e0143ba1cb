#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (ctest prints its summary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export RVEC_TEST_DATA="${RVEC_TEST_DATA:-$(cd .. && pwd)/shared/data}"
if [ ! -d "$RVEC_TEST_DATA" ]; then
  echo "rvec: test data not found at $RVEC_TEST_DATA (set RVEC_TEST_DATA); data-driven tests will fail" >&2
fi
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
