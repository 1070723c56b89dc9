#!/usr/bin/env bash
# Builds egrc with warnings as errors and runs the whole test suite under ctest.
# EGRC_BUILD picks the build folder (default build); EGRC_CMAKE_FLAGS adds
# configure flags (CI uses it for the sanitizer build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EGRC_BUILD:-build}
# shellcheck disable=SC2086
cmake -S "$root" -B "$root/$build" -DEGRC_WERROR=ON ${EGRC_CMAKE_FLAGS:-} >/dev/null
cmake --build "$root/$build" -j "$(nproc)"
cd "$root/$build" && ctest --output-on-failure -j "$(nproc)"
