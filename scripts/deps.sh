#!/usr/bin/env bash
# Installs the Debian 12 packages rvec needs (only those missing), non-interactively.
# Usage: scripts/deps.sh [--main]   --main: only what building and running rvec needs (no test tools)
set -euo pipefail
PACKAGES=(cmake g++ make pkg-config python3 libhwy-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libpcre2-dev libyaml-cpp-dev zlib1g-dev libcpp-httplib-dev libssl-dev libeigen3-dev bubblewrap)
if [ "${1:-}" != "--main" ]; then
  PACKAGES+=(libgtest-dev libgmock-dev libbenchmark-dev clang-format curl)
  # Node 20+ and npm for tests/interop (llama.cpp via node-llama-cpp). A NodeSource nodejs already
  # bundles npm, and Debian's npm package would conflict with it.
  PACKAGES+=(nodejs)
  command -v npm > /dev/null || PACKAGES+=(npm)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "rvec: installing ${missing[*]}" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
