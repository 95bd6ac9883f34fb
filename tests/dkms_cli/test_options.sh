#!/usr/bin/env bash
# The command line itself, as DKMS 3.0.10 parses it (options go before or after the
# action, in any order):
#   -m NAME/VERSION, -m NAME -v VERSION, a bare NAME/VERSION: the same module
#   -k KV, -k KV/ARCH, --kernelver KV, --kernelver=KV, -k KV -a ARCH; -k repeated means
#     each kernel; more than one -a needs as many -k (else exit 1)
#   --force, -j N (0: no limit), --verbose, --kernelsourcedir DIR: accepted, the action
#     works; --no-initrd, --no-prepare-kernel, --no-clean-kernel: obsolete, accepted
#   --no-depmod: install/uninstall do not run depmod (modules.dep is not written)
#   -q: nothing on stdout, the exit status unchanged
#   -V/--version: exit 0, prints `dkms-VERSION` (scripts compare it)
#   --dkmstree=DIR and friends: as --dkmstree DIR
#   an unknown option: exit 2, the option named on stderr
#   no -k: the running kernel (`uname -r`)
#   the same binary under the name `dkms` behaves as `kmodsync dkms`
# DKMS 3.0.10 quirks, not asserted: no action at all (or an unknown word, taken as a
# module name) prints an error and the usage but exits 0; `-k=KV` is an unknown option
# (only the long forms take `=`); -q silences `status` too.
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0
clone_source kmshello-1.0 kmsmanual 1.0

echo "== --version"
run --version
check_rc "--version" 0
check "prints dkms-VERSION" grep -qE '^dkms-[0-9]+\.[0-9]+' <<<"$OUT"
run -V
check_rc "-V" 0
check "prints dkms-VERSION" grep -qE '^dkms-[0-9]+\.[0-9]+' <<<"$OUT"

echo "== unknown options"
run status --no-such-option
check_rc "status --no-such-option" 2
check_contains "the error names the option" "--no-such-option" "$ERR"
run --no-such-option status
check_rc "an unknown option before the action" 2
run -x status
check_rc "an unknown short option" 2
check_contains "the error names it" "-x" "$ERR"

echo "== no action"
run
check "no action: an error on stderr" test -n "$ERR"
check_status "and nothing changes" ""

echo "== -m NAME -v VERSION, -m NAME/VERSION, NAME/VERSION, -k KV/ARCH"
run add -m kmshello -v 1.0
check_rc "add -m kmshello -v 1.0" 0
check_status "added" "$(line_added kmshello 1.0)"
run build -m kmshello/1.0 -k "$K1/$ARCH"
check_rc "build -m kmshello/1.0 -k $K1/$ARCH" 0
check_status "built for $K1 (-m NAME/VERSION)" "$(line_built kmshello 1.0 "$K1")" -m kmshello/1.0

echo "== --no-depmod, -k KV -a ARCH"
run install kmshello/1.0 -k "$K1" -a "$ARCH" --no-depmod
check_rc "install -k $K1 -a $ARCH --no-depmod" 0
check_status "installed" "$(line_installed kmshello 1.0 "$K1")"
check "the module file is there" installed_module "$K1" kmshello
check_not "depmod did not run: no modules.dep for $K1" test -e "$T/usr/lib/modules/$K1/modules.dep"
run uninstall kmshello/1.0 --kernelver "$K1"
check_rc "uninstall --kernelver $K1" 0
check "depmod ran: $K1 has a modules.dep" test -e "$T/usr/lib/modules/$K1/modules.dep"
check_not "that does not list kmshello" depmod_lists "$K1" kmshello
run install kmshello/1.0 --kernelver="$K1"
check_rc "install --kernelver=$K1" 0
check "modules.dep lists kmshello" depmod_lists "$K1" kmshello
run install kmshello/1.0 -k "$K1" --force
check_rc "install --force" 0
check_status "still installed" "$(line_installed kmshello 1.0 "$K1")"
run install kmshello/1.0 -k "$K1" -a "$ARCH" -a i686
check_rc "two -a for one -k" 1

echo "== -j, --verbose, obsolete options, repeated -k"
run build kmshello/1.0 -k "$K2" -j 1 --verbose --no-initrd --no-prepare-kernel --no-clean-kernel
check_rc "build -j 1 --verbose --no-initrd --no-prepare-kernel --no-clean-kernel" 0
check_status "built for $K2" "$(line_built kmshello 1.0 "$K2")" -k "$K2"
run build kmshello/1.0 -k "$K2" --force -j 0
check_rc "build --force -j 0" 0
check_status "still built for $K2" "$(line_built kmshello 1.0 "$K2")" -k "$K2"
run uninstall kmshello/1.0 -k "$K1" -k "$K2"
check_rc "uninstall -k $K1 -k $K2" 0
check_status "built on both" "$(line_built kmshello 1.0 "$K1"; line_built kmshello 1.0 "$K2")"

echo "== --kernelsourcedir"
run build kmsmanual/1.0 -k "$K2" --kernelsourcedir "/usr/src/linux-headers-$K2"
check_rc "build --kernelsourcedir /usr/src/linux-headers-$K2" 0
check_status "built" "$(line_built kmsmanual 1.0 "$K2")" -m kmsmanual

echo "== -q"
clone_source kmshello-1.0 kmsquiet 1.0
run -q add kmsquiet/1.0
check_rc "-q add" 0
check_eq "-q: nothing on stdout" "" "$OUT"
run add kmsnothere/1.0 -q
check_rc "-q keeps the exit status of a failure" 2
check_eq "-q: nothing on stdout" "" "$OUT"
check_status "the quiet add happened" "$(line_added kmsquiet 1.0)" -m kmsquiet

echo "== --dkmstree=DIR --sourcetree=DIR --installtree=DIR"
expected=$(status)
if [ "$IMPL" = dkms ]; then
  actual=$(env PATH="$T/bin:$PATH" TMPDIR="$T/tmp" "$DKMS_BIN" --dkmstree="$T/var/lib/dkms" \
    --sourcetree="$T/usr/src" --installtree="$T/usr/lib/modules" status 2>/dev/null | LC_ALL=C sort)
else
  actual=$(env TMPDIR="$T/tmp" "$KMODSYNC" dkms --dkmstree="$T/var/lib/dkms" \
    --sourcetree="$T/usr/src" --installtree="$T/usr/lib/modules" status 2>/dev/null | LC_ALL=C sort)
fi
check_eq "the = forms give the same status" "$expected" "$actual"
if [ "$IMPL" != dkms ]; then
  # kmodsync's own global options before `dkms` do not pin the root to /.
  actual=$(env TMPDIR="$T/tmp" "$KMODSYNC" -v dkms --dkmstree="$T/var/lib/dkms" \
    --sourcetree="$T/usr/src" --installtree="$T/usr/lib/modules" status 2>/dev/null | LC_ALL=C sort)
  check_eq "kmodsync -v dkms --dkmstree=...: the same status" "$expected" "$actual"
  actual=$(env TMPDIR="$T/tmp" "$KMODSYNC" --root "$T" dkms --dkmstree="$T/var/lib/dkms" status 2>/dev/null |
    LC_ALL=C sort)
  check_eq "kmodsync --root T dkms --dkmstree=T/...: the same status" "$expected" "$actual"
  "$KMODSYNC" --root / dkms --dkmstree="$T/var/lib/dkms" status >/dev/null 2>&1
  check_eq "kmodsync --root / dkms --dkmstree=T/...: two roots, refused (exit 1, as bad arguments)" 1 "$?"
fi

echo "== invoked as dkms"
mapfile -t TREES < <(tree_args "$T")
if [ "$IMPL" = dkms ]; then
  as_dkms() { env PATH="$T/bin:$PATH" TMPDIR="$T/tmp" sign_file="$T/no-sign-file" "$DKMS_BIN" "${TREES[@]}" "$@"; }
else
  mkdir -p "$T/as-dkms"
  ln -s "$KMODSYNC" "$T/as-dkms/dkms"
  as_dkms() { env TMPDIR="$T/tmp" "$T/as-dkms/dkms" "${TREES[@]}" "$@"; }
fi
check_eq "status under the name dkms is the same" "$expected" "$(as_dkms status 2>/dev/null | LC_ALL=C sort)"
as_dkms install kmshello/1.0 -k "$K1" >/dev/null 2>&1
check_eq "dkms install exits 0" 0 "$?"
check_status "installed through the dkms name" "$(line_installed kmshello 1.0 "$K1")" kmshello/1.0 -k "$K1"
as_dkms add kmshello/1.0 >/dev/null 2>&1
check_eq "dkms add of an added module exits 3" 3 "$?"

if foreign_running_kernel; then
  echo "== no -k: the running kernel ($RUNNING, no headers)"
  before=$(status)
  run build kmshello/1.0
  check_rc_nonzero "build without -k fails"
  check_eq "and touches no test kernel" "$before" "$(status)"
  check_not "no status line names $RUNNING" grep -qF "$RUNNING" <<<"$(status)"
fi

finish
