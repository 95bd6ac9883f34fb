#!/usr/bin/env bash
# `dkms mktarball NAME/VERSION -k KV... [--archive PATH] [--source-only|--binaries-only]`
# and `dkms ldtarball PATH` (or `--archive PATH`).
# The tarball is gzip'd tar whose paths (after an optional leading ./) are:
#   dkms_main_tree/KV/ARCH/module/NAME.ko[.xz]     a built module, per kernel archived
#   dkms_main_tree/KV/ARCH/log/...                  (not asserted)
#   dkms_source_tree/...                            the source (not with --binaries-only)
#   dkms_binaries_only/{dkms.conf,PACKAGE_NAME,PACKAGE_VERSION}   (--binaries-only)
# Its default place is DKMSTREE/NAME/VERSION/tarball/NAME-VERSION-kernelKV-ARCH.dkms.tar.gz
# (NAME-VERSION-source-only.dkms.tar.gz with --source-only; one -kernelKV-ARCH per -k).
#   mktarball: 0 written; 1 no NAME/VERSION; 3 not in the tree; 6 not built for a -k
#              kernel; 8 --source-only with --binaries-only
#   ldtarball: 0 loaded (the source goes to SOURCETREE/NAME-VERSION, the modules to the
#              tree: `status` says built, and install uses them without building);
#              2 the file does not exist; 8 NAME/VERSION is already in the tree
# A tarball made by real DKMS is loaded by the implementation under test and the other
# way round.
# DKMS 3.0.10 quirks, not asserted: `mktarball` with two -k archives only the first
# kernel's modules (a `local -r` inside its loop), though the file is named after both
# (asserted as a divergence below); without -k it means the running kernel (exit 6 here);
# `ldtarball --force` of a module in the tree loads it and then exits 3; `ldtarball` of a
# --binaries-only tarball whose source is not in the source tree loads it (status
# `built`) but exits 1, which makes Debian's common.postinst give up.
source "$(dirname "$0")/lib.sh"
setup
require_tools tar gzip cmp
put_source kmshello-1.0

# tar_paths FILE: the archive's paths, without a leading ./ and a trailing /.
tar_paths() { tar -tzf "$1" | sed -e 's|^\./||' -e 's|/$||' | sed '/^$/d' | LC_ALL=C sort; }
# has_path FILE REGEX: some path of the archive matches (anchored).
has_path() { tar_paths "$1" | grep -qE "^($2)\$"; }
# tar_module FILE KV: the archive's module for KV, extracted to stdout.
tar_module() {
  local member
  member=$(tar -tzf "$1" | grep -E "(^|/)dkms_main_tree/$2/$ARCH/module/kmshello\.ko(\.xz|\.zst|\.gz)?\$" | head -n 1)
  [ -n "$member" ] && tar -xzOf "$1" "$member"
}
KO='kmshello\.ko(\.xz|\.zst|\.gz)?'
K1_RE=${K1//./\\.}
K2_RE=${K2//./\\.}
K2_RE=${K2_RE//+/\\+}

run install kmshello/1.0 -k "$K1"
check_rc "install kmshello/1.0 -k $K1" 0
run build kmshello/1.0 -k "$K2"
check_rc "build kmshello/1.0 -k $K2" 0

echo "== mktarball -k $K1"
run mktarball kmshello/1.0 -k "$K1"
check_rc "mktarball kmshello/1.0 -k $K1" 0
tb=$T/var/lib/dkms/kmshello/1.0/tarball/kmshello-1.0-kernel$K1-$ARCH.dkms.tar.gz
check "it is DKMSTREE/kmshello/1.0/tarball/kmshello-1.0-kernel$K1-$ARCH.dkms.tar.gz" test -f "$tb"
check "a gzip'd tar" tar -tzf "$tb"
check "with dkms_main_tree/$K1/$ARCH/module/kmshello.ko" has_path "$tb" "dkms_main_tree/$K1_RE/$ARCH/module/$KO"
check "with dkms_source_tree/dkms.conf" has_path "$tb" "dkms_source_tree/dkms.conf"
# shellcheck disable=SC2016
check "with dkms_source_tree/hello.c and Makefile" eval 'has_path "$tb" dkms_source_tree/hello\\.c && has_path "$tb" dkms_source_tree/Makefile'
check_not "without dkms_binaries_only" has_path "$tb" "dkms_binaries_only(/.*)?"
check_not "without $K2" has_path "$tb" "dkms_main_tree/$K2_RE(/.*)?"
check_eq "only dkms_main_tree and dkms_source_tree at the top" "dkms_main_tree dkms_source_tree" \
  "$(tar_paths "$tb" | cut -d/ -f1 | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "its module is the built one" cmp -s <(tar_module "$tb" "$K1") "$(tree_module kmshello 1.0 "$K1" kmshello)"
cp "$tb" "$T/tmp/k1.dkms.tar.gz"

echo "== mktarball --archive"
run mktarball kmshello/1.0 -k "$K2" --archive "$T/tmp/k2-archive.tar.gz"
check_rc "mktarball -k $K2 --archive PATH" 0
check "written to PATH" test -f "$T/tmp/k2-archive.tar.gz"
check "with dkms_main_tree/$K2/$ARCH/module/kmshello.ko(.xz)" has_path "$T/tmp/k2-archive.tar.gz" "dkms_main_tree/$K2_RE/$ARCH/module/$KO"

echo "== mktarball --source-only"
run mktarball kmshello/1.0 --source-only
check_rc "mktarball --source-only" 0
src_tb=$T/var/lib/dkms/kmshello/1.0/tarball/kmshello-1.0-source-only.dkms.tar.gz
check "it is DKMSTREE/kmshello/1.0/tarball/kmshello-1.0-source-only.dkms.tar.gz" test -f "$src_tb"
check "with dkms_source_tree/dkms.conf" has_path "$src_tb" "dkms_source_tree/dkms.conf"
check_not "without any module" has_path "$src_tb" "dkms_main_tree/.+"
cp "$src_tb" "$T/tmp/source-only.dkms.tar.gz"

echo "== mktarball --binaries-only"
run mktarball kmshello/1.0 -k "$K1" --binaries-only --archive "$T/tmp/binaries.tar.gz"
bin_tb=$T/tmp/binaries.tar.gz
check_rc "mktarball --binaries-only" 0
check "with dkms_binaries_only/dkms.conf" has_path "$bin_tb" "dkms_binaries_only/dkms.conf"
check_eq "dkms_binaries_only/PACKAGE_NAME says kmshello" kmshello \
  "$(tar -xzOf "$bin_tb" --wildcards '*dkms_binaries_only/PACKAGE_NAME' 2>/dev/null)"
check_eq "dkms_binaries_only/PACKAGE_VERSION says 1.0" 1.0 \
  "$(tar -xzOf "$bin_tb" --wildcards '*dkms_binaries_only/PACKAGE_VERSION' 2>/dev/null)"
check "with dkms_main_tree/$K1/$ARCH/module/kmshello.ko" has_path "$bin_tb" "dkms_main_tree/$K1_RE/$ARCH/module/$KO"
check_not "without dkms_source_tree" has_path "$bin_tb" "dkms_source_tree(/.*)?"

echo "== mktarball of two kernels"
run mktarball kmshello/1.0 -k "$K1" -k "$K2"
check_rc "mktarball -k $K1 -k $K2" 0
both_tb=$T/var/lib/dkms/kmshello/1.0/tarball/kmshello-1.0-kernel$K1-$ARCH-kernel$K2-$ARCH.dkms.tar.gz
check "named after both kernels" test -f "$both_tb"
check "with the $K1 module" has_path "$both_tb" "dkms_main_tree/$K1_RE/$ARCH/module/$KO"
if [ "$IMPL" = dkms ]; then
  check_not "DKMS 3.0.10 bug: without the $K2 module" has_path "$both_tb" "dkms_main_tree/$K2_RE/$ARCH/module/$KO"
else
  check "with the $K2 module" has_path "$both_tb" "dkms_main_tree/$K2_RE/$ARCH/module/$KO"
fi

echo "== mktarball errors"
run mktarball kmshello/1.0 -k "$K1" --source-only --binaries-only
check_rc "mktarball --source-only --binaries-only" 8
run mktarball kmshello/1.0 -k 9.9.9-nosuchkernel
check_rc "mktarball -k of a kernel it is not built for" 6
run mktarball kmsnothere/1.0 -k "$K1"
check_rc "mktarball of a module not in the tree" 3
run mktarball -k "$K1"
check_rc "mktarball without a module" 1

echo "== ldtarball"
run ldtarball "$T/tmp/k1.dkms.tar.gz"
check_rc "ldtarball of a module already in the tree" 8
check_status "status unchanged" "$(line_installed kmshello 1.0 "$K1"; line_built kmshello 1.0 "$K2")"
run ldtarball "$T/tmp/nosuch.dkms.tar.gz"
check_rc "ldtarball of a file that does not exist" 2
run ldtarball --archive="$T/tmp/nosuch.dkms.tar.gz"
check_rc "ldtarball --archive= of a file that does not exist" 2

# wipe: the module out of the tree and its source out of the source tree.
wipe() {
  dk remove kmshello/1.0 --all >/dev/null 2>&1
  rm -rf "$T/usr/src/kmshello-1.0"
  [ -z "$(status)" ] && ! installed_module "$K1" kmshello >/dev/null
}
check "remove --all and delete the source" wipe
run ldtarball "$T/tmp/k1.dkms.tar.gz"
check_rc "ldtarball PATH" 0
check_status "the module is built for $K1" "$(line_built kmshello 1.0 "$K1")"
check "its source is back in SOURCETREE/kmshello-1.0" test -f "$T/usr/src/kmshello-1.0/hello.c"
check "the tree links it" test -L "$T/var/lib/dkms/kmshello/1.0/source"
run install kmshello/1.0 -k "$K1"
check_rc "install of the loaded module" 0
check_status "installed" "$(line_installed kmshello 1.0 "$K1")"
check "the installed module is the archived one (nothing was rebuilt)" \
  cmp -s <(tar_module "$T/tmp/k1.dkms.tar.gz" "$K1") "$(installed_module "$K1" kmshello)"

echo "== ldtarball --archive of a source-only tarball"
check "remove --all and delete the source" wipe
run ldtarball --archive "$T/tmp/source-only.dkms.tar.gz"
check_rc "ldtarball --archive PATH" 0
check_status "the module is added" "$(line_added kmshello 1.0)"
check "its source is back" test -f "$T/usr/src/kmshello-1.0/dkms.conf"

echo "== ldtarball of a binaries-only tarball, the source in the source tree"
dk remove kmshello/1.0 --all >/dev/null 2>&1
run ldtarball "$bin_tb"
check_rc "ldtarball of a --binaries-only tarball" 0
check_status "the module is built for $K1" "$(line_built kmshello 1.0 "$K1")"

echo "== tarballs across implementations"
if ! have_dkms; then
  missing "real DKMS 3.0.10, to make and load tarballs across implementations"
else
  # A tarball made by real DKMS, loaded by the implementation under test.
  R2=$T/other
  make_root "$R2"
  put_source kmshello-1.0 "$R2"
  impl_in dkms "$R2" build kmshello/1.0 -k "$K1" >"$T/tmp/other-build.log" 2>&1
  impl_in dkms "$R2" mktarball kmshello/1.0 -k "$K1" --archive "$T/tmp/theirs.dkms.tar.gz" >>"$T/tmp/other-build.log" 2>&1
  check "DKMS made a tarball" test -f "$T/tmp/theirs.dkms.tar.gz"
  check "remove --all and delete the source" wipe
  run ldtarball "$T/tmp/theirs.dkms.tar.gz"
  check_rc "ldtarball of DKMS's tarball" 0
  check_status "built for $K1" "$(line_built kmshello 1.0 "$K1")"
  run install kmshello/1.0 -k "$K1"
  check_rc "install it" 0
  check "the installed module is DKMS's" \
    cmp -s <(tar_module "$T/tmp/theirs.dkms.tar.gz" "$K1") "$(installed_module "$K1" kmshello)"
  # The first tarball of this run, made by the implementation under test, loaded by DKMS.
  R3=$T/third
  make_root "$R3"
  impl_in dkms "$R3" ldtarball "$T/tmp/k1.dkms.tar.gz" >"$T/tmp/third.log" 2>&1
  check_eq "DKMS loads the tarball made here (exit 0)" 0 "$?"
  check_eq "DKMS sees it built" "$(line_built kmshello 1.0 "$K1")" \
    "$(impl_in dkms "$R3" status 2>/dev/null)"
  impl_in dkms "$R3" install kmshello/1.0 -k "$K1" >>"$T/tmp/third.log" 2>&1
  check_eq "DKMS installs it (exit 0)" 0 "$?"
  check "DKMS installed the module made here" \
    cmp -s <(tar_module "$T/tmp/k1.dkms.tar.gz" "$K1") "$(installed_module "$K1" kmshello "$R3")"
fi

finish
