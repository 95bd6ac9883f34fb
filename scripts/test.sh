#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test
bash scripts/build.sh
ctest --test-dir build --output-on-failure "$@"
# CI also fuzzes every parser for a bounded time (scripts/fuzz.sh): 15 s per target, two
# targets per CPU pair at once, about 5 minutes with the clang build on 2 CPUs.
if [ "${CI:-}" = true ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-15} bash scripts/fuzz.sh
fi
