#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test
bash scripts/build.sh
ctest --test-dir build --output-on-failure "$@"
