#!/usr/bin/env bash
# Configures and builds kmodsync into build/ (warnings are errors when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
werror=OFF
[ "${CI:-}" = true ] && werror=ON
cmake -S . -B build -DKMODSYNC_WERROR=$werror -DKMODSYNC_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
