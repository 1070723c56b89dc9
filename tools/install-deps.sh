#!/usr/bin/env bash
# Installs the Debian 12 packages egrc builds, runs and tests with.
# Run as root, or as a user with sudo (it re-runs itself through sudo). Safe to run again.
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang
  libopenblas-openmp-dev libcjson-dev libpcre2-dev libutf8proc-dev
  liblua5.4-dev libffi-dev libomp-dev
  # The HIP plugin's compiler, runtime and sort (ROCm 5.2; about 66 MB to
  # download, mostly clang/LLVM 15), so that every build compiles and links it.
  hipcc libamdhip64-dev librocprim-dev
)
if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "egrc build dependencies installed"
