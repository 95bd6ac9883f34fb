# Shared harness for the DKMS command-line conformance suites (tests/dkms_cli/test_*.sh).
#
#   bash tests/dkms_cli/test_CMD.sh dkms             # the reference: Debian's DKMS 3.0.10
#   bash tests/dkms_cli/test_CMD.sh PATH/kmodsync    # the drop-in: `kmodsync dkms ...`
#
# Every assertion is meant to hold for both: a run against real DKMS is what proves a test
# honest. Each suite gets a throwaway root T (usr-merged: T/lib -> usr/lib):
#   T/usr/src                    module sources (--sourcetree)
#   T/usr/lib/modules/KV/build   -> /usr/src/linux-headers-KV (the host's real headers)
#   T/var/lib/dkms               the DKMS tree (--dkmstree)
# and `dk ARGS...` runs the implementation under test on it. Real DKMS 3.0.10 does not
# confine everything to those three trees, so it is fenced in: depmod through a wrapper
# that adds `-b T`, its temporary files under T/tmp, and a sign_file that does not exist
# (so it neither signs nor generates /var/lib/dkms/mok.key). Its kernel headers come from
# the host's /lib/modules/KV/build links (DKMS 3.0.10 always looks there, whatever
# --installtree says), which exist for the two kernels used here. Every suite ends by
# checking that the host's /var/lib/dkms, /usr/src and /lib/modules are unchanged.
#
# Exit status: 0 all passed, 1 some failed (the root is kept for a look), 77 skipped
# (missing tools or headers), unless KMODSYNC_REQUIRE_ALL=1 turns skips into failures.
# shellcheck shell=bash
# shellcheck disable=SC2034 # OUT, ERR and others are set here for the suites

set -u
IMPL_ARG=${1:?usage: $0 dkms|PATH-TO-kmodsync}
SUITE=$(basename "$0" .sh)
DKMS_CLI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES=$DKMS_CLI_DIR/fixtures
K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
ARCH=$(uname -m)
RUNNING=$(uname -r)
PASSED=0
FAILED=0
RC=0
OUT=
ERR=
DKMS_BIN=/usr/sbin/dkms
DEPMOD_BIN=$(command -v depmod || echo /usr/sbin/depmod)

if [ "$IMPL_ARG" = dkms ]; then
  IMPL=dkms
  KMODSYNC=
else
  IMPL=kmodsync
  KMODSYNC=$(realpath "$IMPL_ARG")
fi

T=$(readlink -f "$(mktemp -d "/tmp/kmodsync-dkms-$SUITE.XXXXXX")")
chmod 755 "$T" # builds run as an unprivileged user, who must reach the roots inside

pass() { PASSED=$((PASSED + 1)); echo "  ok    $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL  $*"; }

# skip REASON: exit 77 (ctest's skip), unless CI demands everything.
skip() {
  if [ "${KMODSYNC_REQUIRE_ALL:-0}" = 1 ]; then
    echo "$SUITE: FAIL: required but missing: $*"
    exit 1
  fi
  echo "$SUITE: skipped: $*"
  rm -rf "$T"
  exit 77
}

# --- the host must not change -------------------------------------------------------
host_fingerprint() {
  {
    find /var/lib/dkms -printf '%p %y %s %T@\n' 2>/dev/null
    find /usr/src -maxdepth 1 -printf '%p %y %T@\n' 2>/dev/null
    find /lib/modules/ -maxdepth 2 -printf '%p %y %s %T@\n' 2>/dev/null
    find /lib/modules/ -mindepth 3 -maxdepth 3 -path '*/updates/*' -printf '%p\n' 2>/dev/null
  } | sort
}
HOST_BEFORE=$(host_fingerprint)

finish() {
  local after
  after=$(host_fingerprint)
  if [ "$after" = "$HOST_BEFORE" ]; then
    pass "the host's /var/lib/dkms, /usr/src and /lib/modules are unchanged"
  else
    fail "the host changed: $(diff <(echo "$HOST_BEFORE") <(echo "$after") | grep '^[<>]' | head -n 5 | tr '\n' ' ')"
  fi
  echo "$SUITE ($IMPL): $PASSED passed, $FAILED failed"
  if [ "$FAILED" -eq 0 ]; then
    rm -rf "$T"
  else
    echo "$SUITE: work directory kept: $T"
  fi
  [ "$FAILED" -eq 0 ]
}

# --- assertions ------------------------------------------------------------------------
# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
  local description=$1
  shift
  if "$@" >/dev/null 2>&1; then pass "$description"; else fail "$description"; fi
}

# check_not DESCRIPTION COMMAND...: passes when the command fails.
check_not() {
  local description=$1
  shift
  if "$@" >/dev/null 2>&1; then fail "$description"; else pass "$description"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

# check_rc DESCRIPTION EXPECTED: the exit status of the last `run`.
check_rc() {
  if [ "$RC" = "$2" ]; then
    pass "$1 (exit $RC)"
  else
    fail "$1: expected exit $2, got $RC; stderr: $(tail -n 3 <<<"$ERR" | tr '\n' ' ')"
  fi
}

# check_rc_nonzero DESCRIPTION: the last `run` failed, whatever the code.
check_rc_nonzero() {
  if [ "$RC" != 0 ]; then pass "$1 (exit $RC)"; else fail "$1: expected a failure, got exit 0"; fi
}

# check_contains DESCRIPTION NEEDLE HAYSTACK: a fixed-string match.
check_contains() {
  if grep -qF -- "$2" <<<"$3"; then pass "$1"; else fail "$1: '$2' not in '$(head -c 300 <<<"$3" | tr '\n' ' ')'"; fi
}

check_not_contains() {
  if grep -qF -- "$2" <<<"$3"; then fail "$1: '$2' unexpectedly in '$(head -c 300 <<<"$3" | tr '\n' ' ')'"; else pass "$1"; fi
}

# --- the implementation under test -----------------------------------------------------
# tree_args ROOT: the three tree options for a root.
tree_args() {
  printf '%s\n' --dkmstree "$1/var/lib/dkms" --sourcetree "$1/usr/src" --installtree "$1/usr/lib/modules"
}

# impl_in WHICH ROOT ARGS...: runs `dkms` (WHICH=dkms) or `kmodsync dkms` (WHICH=kmodsync)
# against ROOT.
impl_in() {
  local which=$1 root=$2
  shift 2
  local -a trees
  mapfile -t trees < <(tree_args "$root")
  if [ "$which" = dkms ]; then
    env PATH="$root/bin:$PATH" TMPDIR="$root/tmp" sign_file="$root/no-sign-file" \
      mok_signing_key="$root/mok.key" mok_certificate="$root/mok.pub" \
      "$DKMS_BIN" "${trees[@]}" "$@"
  else
    env TMPDIR="$root/tmp" "$KMODSYNC" dkms "${trees[@]}" "$@"
  fi
}

# dk ARGS...: the implementation under test, on T.
dk() { impl_in "$IMPL" "$T" "$@"; }

# run ARGS...: dk, keeping stdout in OUT, stderr in ERR and the exit status in RC.
run() {
  local out_file=$T/tmp/run.out err_file=$T/tmp/run.err
  dk "$@" </dev/null >"$out_file" 2>"$err_file"
  RC=$?
  OUT=$(cat "$out_file")
  ERR=$(cat "$err_file")
  return 0
}

# status ARGS...: the stdout of `status ARGS`, sorted (DKMS sorts by module, version and
# kernel; scripts grep the lines, so the order is not asserted).
status() { dk status "$@" </dev/null 2>/dev/null | LC_ALL=C sort; }

# check_status DESCRIPTION EXPECTED-LINES [STATUS-ARGS...]: the whole status output.
check_status() {
  local description=$1 expected=$2 actual
  shift 2
  expected=$(printf '%s' "$expected" | sed '/^$/d' | LC_ALL=C sort)
  actual=$(status "$@")
  if [ "$actual" = "$expected" ]; then
    pass "$description"
  else
    fail "$description: expected [$(tr '\n' '|' <<<"$expected")], got [$(tr '\n' '|' <<<"$actual")]"
  fi
}

# The status line forms scripts grep for.
line_added() { echo "$1/$2: added"; }
line_built() { echo "$1/$2, $3, $ARCH: built"; }
line_installed() { echo "$1/$2, $3, $ARCH: installed"; }

# --- roots, sources, files -------------------------------------------------------------
# make_root ROOT: the layout above, with both kernels.
make_root() {
  local root=$1 kv
  mkdir -p "$root/usr/src" "$root/usr/lib/modules" "$root/var/lib/dkms" "$root/tmp" "$root/bin" "$root/etc"
  ln -sfn usr/lib "$root/lib"
  for kv in "$K1" "$K2"; do
    mkdir -p "$root/usr/lib/modules/$kv"
    ln -sfn "/usr/src/linux-headers-$kv" "$root/usr/lib/modules/$kv/build"
  done
  # Real DKMS runs `depmod -a KV [-F System.map]`: keep it inside the root.
  printf '#!/bin/sh\nexec %s -b %s "$@"\n' "$DEPMOD_BIN" "$root" >"$root/bin/depmod"
  chmod +x "$root/bin/depmod"
}

# put_source FIXTURE [ROOT]: copies fixtures/FIXTURE to ROOT/usr/src/FIXTURE.
put_source() { cp -a "$FIXTURES/$1" "${2:-$T}/usr/src/$1"; }

# clone_source FIXTURE NAME VERSION [ROOT]: ROOT/usr/src/NAME-VERSION, a copy of a fixture
# with its package name, module name and version replaced.
clone_source() {
  local fixture=$1 name=$2 version=$3 root=${4:-$T}
  local old_name=${fixture%-*} old_version=${fixture##*-} dest
  dest=$root/usr/src/$name-$version
  cp -a "$FIXTURES/$fixture" "$dest"
  sed -i -e "s/$old_name/$name/g" -e "s/\"$old_version\"/\"$version\"/g" \
    "$dest/dkms.conf" "$dest/Makefile" "$dest"/*.c
}

# module_file DIR NAME: DIR/NAME.ko, or the compressed one (.ko.xz, .ko.zst, .ko.gz), if any.
module_file() {
  local f
  for f in "$1/$2.ko" "$1/$2.ko.xz" "$1/$2.ko.zst" "$1/$2.ko.gz"; do
    [ -e "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

# installed_module KV NAME [ROOT]: where DKMS puts a module on Debian
# (DEST_MODULE_LOCATION is overridden to /updates/dkms). DKMS compresses it like the
# kernel's own modules: .ko on 6.1.0-55 (CONFIG_MODULE_COMPRESS_NONE), .ko.xz on 6.12.
# Either extension is accepted for either kernel: the location and the name are the
# contract, the compression follows the kernel.
installed_module() { module_file "${3:-$T}/usr/lib/modules/$1/updates/dkms" "$2"; }

# tree_module NAME VERSION KV MODULE [ROOT]: the built copy each implementation keeps:
# DKMS in its tree (DKMSTREE/NAME/VERSION/KV/ARCH/module), kmodsync where the cell's record
# says (its build cache, /var/lib/kmodsync/cache/.../INDEX-MODULE.ko). Where the copy lives
# is each tool's business; that a built module is kept, and is what gets installed, is the
# contract.
tree_module() {
  if [ "$IMPL" = dkms ]; then
    module_file "${5:-$T}/var/lib/dkms/$1/$2/$3/$ARCH/module" "$4"
  else
    local root=${5:-$T} kept
    kept=$(jq -r --arg m "$1" --arg v "$2" --arg k "$3" --arg n "$4" \
      '.cells[] | select(.module == $m and .version == $v and .kernel == $k) | .built[].path
       | select(test("/[0-9]+-" + $n + "\\.ko$"))' "$root/var/lib/kmodsync/state.json" 2>/dev/null | head -n1)
    [ -n "$kept" ] && [ -f "$root$kept" ] && echo "$root$kept"
  fi
}

# source_link NAME VERSION: where DKMSTREE/NAME/VERSION/source leads, inside T. DKMS
# writes the path as it was given (T/usr/src/...); kmodsync writes the path as the system
# in T names it (/usr/src/...), which is what scripts running inside T (chrooted
# maintainer scripts) see.
source_link() {
  local target
  target=$(readlink "$T/var/lib/dkms/$1/$2/source") || return 1
  case $target in
    "$T"/*) echo "$target" ;;
    /*) echo "$T$target" ;;
    *) echo "$T/var/lib/dkms/$1/$2/$target" ;;
  esac
}

# build_log NAME VERSION KV [ROOT]: the log of the module's last build: DKMS's one per
# module (DKMSTREE/NAME/VERSION/build/make.log), kmodsync's one per cell.
build_log() {
  if [ "$IMPL" = dkms ]; then
    echo "${4:-$T}/var/lib/dkms/$1/$2/build/make.log"
  else
    echo "${4:-$T}/var/lib/kmodsync/log/$3/$1-$2.log"
  fi
}

# stamp FILE: inode and mtime (ns): changes when a file is rewritten.
stamp() { stat -c '%i %y' "$1" 2>/dev/null || echo absent; }

# foreign_running_kernel: the running kernel is neither test kernel and has no headers or
# module directory anywhere, so an action without -k (which means `uname -r`) can only
# fail and must leave the test kernels alone.
foreign_running_kernel() {
  [ "$RUNNING" != "$K1" ] && [ "$RUNNING" != "$K2" ] \
    && [ ! -e "/lib/modules/$RUNNING/build" ] && [ ! -e "$T/usr/lib/modules/$RUNNING" ]
}

# depmod_lists KV NAME [ROOT]: modules.dep names the installed module.
depmod_lists() { grep -q "updates/dkms/$2\.ko" "${3:-$T}/usr/lib/modules/$1/modules.dep" 2>/dev/null; }

# --- preconditions -----------------------------------------------------------------------
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || skip "tool $tool is not installed"
  done
}

require_headers() {
  local kv
  for kv in "$K1" "$K2"; do
    [ -f "/usr/src/linux-headers-$kv/Makefile" ] \
      || skip "headers for $kv are not installed (apt-get install linux-headers-$kv)"
    # DKMS 3.0.10 finds headers only through /lib/modules/KV/build on the host.
    [ -e "/lib/modules/$kv/build/include" ] \
      || skip "/lib/modules/$kv/build does not lead to the headers (DKMS looks there)"
  done
}

# have_dkms: real DKMS 3.0.10 is here (for the parts that run both implementations).
have_dkms() { [ -x "$DKMS_BIN" ] && "$DKMS_BIN" --version 2>/dev/null | grep -q '^dkms-3\.0\.10'; }

# missing WHAT: a part of a suite cannot run; a failure under KMODSYNC_REQUIRE_ALL=1.
missing() {
  if [ "${KMODSYNC_REQUIRE_ALL:-0}" = 1 ]; then fail "required but missing: $*"; else echo "  skip  (missing $*)"; fi
}

require_dkms() {
  [ -x "$DKMS_BIN" ] || skip "DKMS is not installed (apt-get install dkms)"
  "$DKMS_BIN" --version 2>/dev/null | grep -q '^dkms-3\.0\.10' \
    || skip "the reference is DKMS 3.0.10, found $("$DKMS_BIN" --version 2>&1 | head -n 1)"
}

require_impl() {
  if [ "$IMPL" = dkms ]; then
    require_dkms
  else
    [ -x "$KMODSYNC" ] || skip "$KMODSYNC is not executable"
    local probe
    probe=$(mktemp -d "$T/tmp/probe.XXXXXX")
    make_root "$probe"
    impl_in kmodsync "$probe" status >/dev/null 2>&1 \
      || skip "$KMODSYNC has no working 'dkms' command yet ('kmodsync dkms status' fails)"
    rm -rf "$probe"
  fi
}

setup() {
  require_tools make gcc depmod modinfo tar xz
  require_headers
  mkdir -p "$T/tmp"
  require_impl
  make_root "$T"
}
