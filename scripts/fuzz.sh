#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang 16, ASan, UBSan; into build-fuzz/) and runs
# each for a bounded time, starting from its seeds in fuzz/corpus/NAME/ (which stay
# regression tests: every seed runs first). Exits 1 when a target crashes, leaks, hangs or
# runs out of memory, naming the input that does it (the reproducer).
# Usage: scripts/fuzz.sh [NAME...]       (default: every target; NAME as fuzz_NAME.cpp)
#   FUZZ_SECONDS  seconds per target (default 20)
#   FUZZ_JOBS     targets run at once (default: the number of CPUs)
# Reproduce one: build-fuzz/fuzz/fuzz_NAME build-fuzz/fuzz-artifacts/NAME-crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-$(nproc)}
build=build-fuzz
cxx=${FUZZ_CXX:-clang++-16}
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found (scripts/install-deps.sh test installs clang-16)" >&2
  exit 2
fi

# Only what the targets link is built; -O1 with line tables keeps the build short and the
# stack traces readable.
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DKMODSYNC_FUZZ=ON -DKMODSYNC_TESTS=OFF \
  -DKMODSYNC_RPM_PLUGIN=OFF -DKMODSYNC_APT_HOOK=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null
cmake --build "$build" --target fuzz -j"$(nproc)"

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for source in fuzz/fuzz_*.cpp; do
    name=${source#fuzz/fuzz_}
    name=${name%.cpp}
    [ -x "$build/fuzz/fuzz_$name" ] && names+=("$name")
  done
fi

artifacts=$build/fuzz-artifacts
logs=$build/fuzz-logs
mkdir -p "$artifacts" "$logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
for symbolizer in llvm-symbolizer-16 llvm-symbolizer-14 llvm-symbolizer; do
  if command -v "$symbolizer" >/dev/null; then
    export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v "$symbolizer")}
    break
  fi
done

# One target: new inputs go to a working corpus under build-fuzz/, never into fuzz/corpus/.
run_target() {
  local name=$1
  local binary=$build/fuzz/fuzz_$name
  local work=$build/fuzz-corpus/$name
  mkdir -p "$work"
  [ -x "$binary" ] || { echo "fuzz: no target $name" >"$logs/$name.log"; return 2; }
  # Absolute paths: some targets change directory.
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$PWD/$artifacts/$name-" "$PWD/$work" "$PWD/fuzz/corpus/$name" >"$logs/$name.log" 2>&1
}

started=$SECONDS
declare -A running=() # pid -> name
failed=()
reap() {
  local pid status=0
  wait -n -p pid || status=$?
  local name=${running[$pid]}
  unset "running[$pid]"
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$name.log" | tail -1)
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $name: ok (${runs:-?} runs)"
    return
  fi
  failed+=("$name")
  echo "fuzz: $name: FAILED (exit $status); log: $logs/$name.log" >&2
  grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz property violated|.*runtime error)' "$logs/$name.log" | head -5 >&2 || true
  sed -n 's/.*Test unit written to \(.*\)$/fuzz: reproducer: \1/p' "$logs/$name.log" >&2
}
for name in "${names[@]}"; do
  while [ ${#running[@]} -ge "$jobs" ]; do
    reap
  done
  run_target "$name" &
  running[$!]=$name
done
while [ ${#running[@]} -gt 0 ]; do
  reap
done

echo "fuzz: ${#names[@]} targets, ${seconds} s each, $((SECONDS - started)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (reproduce: $build/fuzz/fuzz_NAME REPRODUCER)" >&2
  exit 1
fi
