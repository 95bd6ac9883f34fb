# Shared helpers for the integration suites: assertions, skips, throwaway roots.
# shellcheck shell=bash

set -u
KMODSYNC=${1:?usage: $0 PATH-TO-kmodsync}
KMODSYNC=$(realpath "$KMODSYNC")
SUITE=$(basename "$0" .sh)
PASSED=0
FAILED=0
WORK=$(mktemp -d "/tmp/kmodsync-$SUITE.XXXXXX")
# Searchable: builds run as an unprivileged user, who must reach the roots inside.
chmod 755 "$WORK"
CORPUS_DIR=${KMODSYNC_CORPUS_DIR:-/tmp/kmodsync-corpus}

finish() {
  echo "$SUITE: $PASSED passed, $FAILED failed"
  if [ "$FAILED" -eq 0 ]; then
    rm -rf "$WORK"
  else
    echo "$SUITE: work directory kept: $WORK"
  fi
  [ "$FAILED" -eq 0 ]
}

# skip REASON: exit 77 (ctest's skip), unless CI demands everything.
skip() {
  if [ "${KMODSYNC_REQUIRE_ALL:-0}" = 1 ]; then
    echo "$SUITE: FAIL: required but missing: $*"
    exit 1
  fi
  echo "$SUITE: skipped: $*"
  rm -rf "$WORK"
  exit 77
}

pass() { PASSED=$((PASSED + 1)); echo "  ok    $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL  $*"; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
  local description=$1
  shift
  if "$@" >/dev/null 2>&1; then pass "$description"; else fail "$description"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || skip "tool $tool is not installed"
  done
}

require_headers() {
  local kv
  for kv in "$@"; do
    [ -f "/usr/src/linux-headers-$kv/Makefile" ] || skip "headers for $kv are not installed (apt-get install linux-headers-$kv)"
  done
}

# fetch_sources PKG...: downloads real Debian *-dkms packages (without running their
# maintainer scripts) into the corpus cache.
fetch_sources() {
  mkdir -p "$CORPUS_DIR"
  local package
  for package in "$@"; do
    if ! ls "$CORPUS_DIR/${package}"_*.deb >/dev/null 2>&1; then
      (cd "$CORPUS_DIR" && apt-get download "$package" >/dev/null 2>&1) \
        || skip "cannot download $package (apt-get download)"
    fi
  done
}

# make_root DIR KV...: an empty usr-merged system with the given kernels, whose build
# links point at the host's real headers.
make_root() {
  local root=$1 kv
  shift
  mkdir -p "$root/usr/src" "$root/usr/lib/modules" "$root/etc"
  ln -s usr/lib "$root/lib"
  for kv in "$@"; do
    mkdir -p "$root/usr/lib/modules/$kv"
    ln -s "/usr/src/linux-headers-$kv" "$root/usr/lib/modules/$kv/build"
  done
}

# add_sources ROOT PKG...: unpacks the packages' /usr/src trees into ROOT.
add_sources() {
  local root=$1 package stage
  shift
  stage=$(mktemp -d "$WORK/stage.XXXXXX")
  for package in "$@"; do
    dpkg-deb -x "$CORPUS_DIR/${package}"_*.deb "$stage"
  done
  cp -a "$stage"/usr/src/. "$root/usr/src/"
  rm -rf "$stage"
}

# cell_field JSON MODULE KERNEL FIELD: one field of one cell of `--json` output.
cell_field() {
  jq -r --arg m "$2" --arg k "$3" --arg f "$4" \
    '[.cells[] | select(.module == $m and .kernel == $k)][0] | if . == null then "absent" else .[$f] | tostring end' "$1"
}
