#!/usr/bin/env bash
# kmodsync's pacman hooks (hooks/pacman/70-kmodsync-{install,remove}.hook and
# BUILD/hooks/pacman/kmodsync-pacman-hook) under real pacman 6.0.2 transactions: packages
# built here with makepkg (module sources from tests/dkms_cli/fixtures, kernel-like
# packages, an Arch-style headers package) are installed, upgraded and removed with
# `pacman --root R -U/-R`, and after each transaction the suite asserts the .ko files under
# updates/dkms (vermagic, version), modules.dep, `kmodsync status --json`, which kmodsync
# commands the hooks ran, and that pacman exited 0 without a warning.
#
# The contract: 70-kmodsync-install.hook (Install/Upgrade, PostTransaction) runs
# `/usr/lib/kmodsync/kmodsync-pacman-hook install` with the matched paths on stdin, which
# runs one `kmodsync sync ...` pass for the kernels and module sources that arrived;
# 70-kmodsync-remove.hook (Remove, PreTransaction, while the files are still there) runs
# `... remove`: `kmodsync kernel-remove KV` for each kernel going away (so pacman finds
# the kernel's directory as it installed it) and `kmodsync uninstall NAME/VERSION` for each
# module source going away. The helper runs /usr/bin/kmodsync (or $KMODSYNC) and always
# exits 0: no module that fails to build fails pacman.
#
# The root. pacman runs a hook's Exec without a shell, chrooted into the root: the helper,
# kmodsync, their shared libraries and everything a pass runs (bash, make, gcc, kbuild's
# tools, depmod) must exist inside R, while the packages under test install into the same
# R/usr. Measured alternatives:
#   - R assembled from the host's binaries (copying bash, make, gcc's driver, cc1, as, ld,
#     coreutils, sed, awk, kmod and their libraries): kbuild runs dozens of tools, and any
#     one missing is a false failure; not a system anything is really installed on.
#   - an overlay of the host's / (overlayfs is available here): R would carry the host's
#     /usr/lib/modules and /usr/src (its kernels, its headers' build links), which collide
#     with the test's kernel packages and put the host's kernels into every pass.
#   - R = a real Debian 12 (debootstrap --variant=minbase, tests/integration/chroot_lib.sh,
#     about 20-30 s from the cache shared with test_dkms_packages), where apt installs the
#     toolchain and kmodsync's libraries, `cmake --install` puts kmodsync in as a package
#     would (the .hook files in R/usr/share/libalpm/hooks, where pacman --root R reads its
#     system hooks), and the host's pacman drives it with --root R as pacstrap does. Chosen.
# Debian's headers packages cannot be installed into R with apt: they create
# usr/lib/modules/KV/build, which the kernel package under test owns (pacman refuses files
# that exist in the file system). The host's real header trees (and the kbuild tools they
# link to) are bind-mounted read-only at their own paths instead.
# --hookdir names a directory of the suite's: it replaces the host's /etc/pacman.d/hooks and
# holds a stand-in for Arch's kmod hook (60-depmod.hook: depmod after a kernel arrives, its
# output removed and the directory rmdir'ed after one leaves), so the test sees whether a
# removed kernel's directory goes away as on Arch.
#
# KMODSYNC_PACMAN_KEEP=1 keeps the root (beside the work directory).
source "$(dirname "$0")/lib.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE_DIR=$(cd "$HERE/../.." && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures
BUILD_DIR=$(realpath -m "$(dirname "$KMODSYNC")/..")
HELPER=$BUILD_DIR/hooks/pacman/kmodsync-pacman-hook

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, mount, pacman --root)"
require_tools pacman makepkg bsdtar fakeroot zstd runuser debootstrap chroot mount umount \
  mountpoint findmnt cmake jq modinfo ldd dpkg
require_headers "$K1" "$K2"
[ -f "$BUILD_DIR/CMakeCache.txt" ] || skip "$KMODSYNC is not BUILD_DIR/core/kmodsync of a CMake build"
[ -x "$HELPER" ] || skip "the pacman hook helper is not built ($HELPER)"
for hook in 70-kmodsync-install.hook 70-kmodsync-remove.hook; do
  [ -f "$SOURCE_DIR/hooks/pacman/$hook" ] || skip "hooks/pacman/$hook is not written yet"
done

R=$WORK/root
[ "${KMODSYNC_PACMAN_KEEP:-0}" = 1 ] && R=$WORK-root
LOGS=$WORK/logs
# shellcheck disable=SC2034 # read by chroot_lib.sh
CHROOT_KEEP=${KMODSYNC_PACMAN_KEEP:-0}
# shellcheck disable=SC2034
CHROOT_SAVED_LOGS=(/var/log/kmodsync-calls.log)
# The chroot: phase, in_root, chroot_debootstrap, chroot_apt_get, chroot_teardown.
source "$HERE/chroot_lib.sh"

# --- the host, before -----------------------------------------------------------------
host_snapshot() {
  find /var/lib/pacman /etc/pacman.d /usr/share/libalpm /var/cache/pacman /var/log/pacman.log \
    /usr/lib/modules /usr/src /var/lib/kmodsync -maxdepth 3 -printf '%p %y %s %T@ %l\n' 2>/dev/null | sort
}
HOST_BEFORE=$(host_snapshot)

# --- packages (makepkg as nobody, while debootstrap runs) -------------------------------
PKGS=$WORK/packages
PKGBUILDS=$WORK/pkgbuild
chmod 711 "$WORK"
mkdir -p "$PKGS" "$PKGBUILDS"

# pkgbuild NAME VERSION ARCH: a PKGBUILD whose package() copies $startdir/files into the
# package (so the package ships exactly the tree the suite laid out).
pkgbuild() {
  local dir=$PKGBUILDS/$1-$2
  mkdir -p "$dir/files"
  cat >"$dir/PKGBUILD" <<EOF
pkgname=$1
pkgver=$2
pkgrel=1
pkgdesc="kmodsync test package"
arch=('$3')
license=('GPL')
options=('!strip' '!debug' '!zipman' '!purge')
package() {
  cp -a "\$startdir/files/." "\$pkgdir/"
}
EOF
  echo "$dir/files"
}

# module_source NAME VERSION FIXTURE: a package shipping usr/src/NAME-VERSION.
module_source() {
  local files
  files=$(pkgbuild "$1" "$2" any)
  mkdir -p "$files/usr/src/$1-$2"
  cp -a "$FIXTURES/$3/." "$files/usr/src/$1-$2/"
  sed -i "s/^PACKAGE_VERSION=.*/PACKAGE_VERSION=\"$2\"/" "$files/usr/src/$1-$2/dkms.conf"
  sed -i "s/MODULE_VERSION(\"[^\"]*\")/MODULE_VERSION(\"$2\")/" "$files/usr/src/$1-$2"/*.c
}

# kernel_package NAME PKGVER KV [BUILD-LINK]: a kernel-like package: usr/lib/modules/KV with
# vmlinuz (a placeholder: nothing here boots it), modules.order and modules.builtin{,.modinfo}
# (empty: no in-tree modules), pkgbase (as Arch's) and, when given, a build link.
kernel_package() {
  local files dir
  files=$(pkgbuild "$1" "$2" x86_64)
  dir=$files/usr/lib/modules/$3
  mkdir -p "$dir"
  echo "placeholder kernel image for $3" >"$dir/vmlinuz"
  : >"$dir/modules.order"
  : >"$dir/modules.builtin"
  : >"$dir/modules.builtin.modinfo"
  echo "$1" >"$dir/pkgbase"
  [ -n "${4:-}" ] && ln -s "$4" "$dir/build"
  return 0
}

# headers_package NAME PKGVER KV: an Arch-style headers package: usr/lib/modules/KV/build is
# a directory (Arch's linux-headers layout), here a copy of Debian's arch-specific tree of
# KV, whose Makefile includes the -common tree and whose scripts and tools point at the
# kbuild package's (both bind-mounted into the root).
headers_package() {
  local files build link
  files=$(pkgbuild "$1" "$2" x86_64)
  build=$files/usr/lib/modules/$3/build
  mkdir -p "$build"
  cp -a "/usr/src/linux-headers-$3/." "$build/"
  for link in scripts tools; do
    [ -L "$build/$link" ] && ln -sfn "$(realpath "/usr/src/linux-headers-$3/$link")" "$build/$link"
  done
  return 0
}

build_packages() {
  module_source kmshello 1.0 kmshello-1.0
  module_source kmshello 2.0 kmshello-1.0
  module_source kmsbroken 1.0 kmsbroken-1.0
  kernel_package linux-test 6.1.0.55 "$K1" "/usr/src/linux-headers-$K1"
  kernel_package linux-test2 6.12.107 "$K2"
  headers_package linux-test2-headers 6.12.107 "$K2"
  chown -R nobody:nogroup "$PKGBUILDS" "$PKGS"
  local dir
  for dir in "$PKGBUILDS"/*/; do
    # PACMAN=true: makepkg lists the host's installed packages into .BUILDINFO with pacman
    # -Q, and the host has no pacman database.
    (cd "$dir" && runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME="$dir" LANG=C.UTF-8 \
      PKGEXT=.pkg.tar.zst PKGDEST="$PKGS" BUILDDIR="$dir/build" SRCDEST="$dir" PACMAN=true \
      makepkg --nodeps --noconfirm --nocolor) >"$PKGBUILDS/$(basename "$dir").log" 2>&1 || return 1
  done
}

# pkgfile NAME VERSION: the built package's path.
pkgfile() { compgen -G "$PKGS/$1-$2-1-*.pkg.tar.zst" | head -n 1; }

# --- the root --------------------------------------------------------------------------
# runtime_packages BINARY...: the host's Debian packages holding the binaries' libraries.
runtime_packages() {
  local lib
  ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null
  done | cut -d: -f1 | sort -u
}

# bind_ro DIR: the host's DIR, read-only, at the same path in the root.
bind_ro() {
  mkdir -p "$R$1"
  mount --bind "$1" "$R$1" && mount -o remount,bind,ro "$R$1"
}

# header_trees KV: the host directories KV's headers need: the tree itself, the -common tree
# its Makefile includes, the kbuild tree its scripts link points into.
header_trees() {
  echo "/usr/src/linux-headers-$1"
  dirname "$(awk '$1 == "include" {print $2; exit}' "/usr/src/linux-headers-$1/Makefile")"
  dirname "$(realpath "/usr/src/linux-headers-$1/scripts")"
}

# --- pacman ----------------------------------------------------------------------------
HOOKDIR=$WORK/hooks
PACMAN_CONF=$WORK/pacman.conf
mkdir -p "$HOOKDIR" "$WORK/pacman-cache" "$WORK/gnupg"
cat >"$PACMAN_CONF" <<'EOF'
[options]
Architecture = auto
SigLevel = Never
LocalFileSigLevel = Never
EOF
# A stand-in for Arch's kmod hook (/usr/share/libalpm/hooks/60-depmod.hook and its script):
# depmod for a kernel that arrived; for one that left, its depmod output removed and its
# directory removed if that leaves it empty.
cat >"$HOOKDIR/60-depmod.hook" <<'EOF'
[Trigger]
Type = Path
Operation = Install
Operation = Upgrade
Operation = Remove
Target = usr/lib/modules/*/
Target = !usr/lib/modules/*/?*

[Action]
Description = Updating module dependencies (stand-in for Arch's kmod hook)...
When = PostTransaction
Exec = /usr/share/libalpm/scripts/depmod
NeedsTargets
EOF
# shellcheck disable=SC2016 # the script's own expansions
DEPMOD_SCRIPT='#!/bin/bash -e
while read -r f; do
  if [[ -e ${f}modules.order ]]; then
    depmod "$(basename "$f")"
  elif [[ -d $f ]]; then
    rm -f "${f}"modules.{alias,alias.bin,builtin.alias.bin,builtin.bin,dep,dep.bin,devname,softdep,symbols,symbols.bin}
    rmdir --ignore-fail-on-non-empty "$f"
  fi
done'

# The environment pacman (and so the hooks) runs with: a clean one, as from a shell on the
# system; HOOK_ENV adds KMODSYNC when the helper's default does not work (a failure).
HOOK_ENV=()
CALLS=$R/var/log/kmodsync-calls.log
CALLS_SEEN=0
PACMAN_STEP=0
# pac DESCRIPTION PACMAN-ARGS...: one transaction; pacman must exit 0 and print no warning
# or error. PAC_LOG is its output, PAC_CALLS the kmodsync commands its hooks ran.
pac() {
  local description=$1 rc total
  shift
  PACMAN_STEP=$((PACMAN_STEP + 1))
  PAC_LOG=$LOGS/pacman-$PACMAN_STEP.log
  echo "# pacman $*" >"$PAC_LOG"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "${HOOK_ENV[@]}" \
    pacman --config "$PACMAN_CONF" --root "$R" --dbpath "$R/var/lib/pacman" --hookdir "$HOOKDIR" \
    --cachedir "$WORK/pacman-cache" --logfile "$LOGS/pacman.log" --gpgdir "$WORK/gnupg" \
    --noconfirm --noprogressbar "$@" >>"$PAC_LOG" 2>&1
  rc=$?
  check_eq "$description: pacman exits 0" 0 "$rc"
  check_eq "$description: no warning or error from pacman" "" \
    "$(grep -E '^(warning|error):' "$PAC_LOG" | head -n 3 | xargs)"
  total=$({ wc -l <"$CALLS"; } 2>/dev/null || echo 0)
  PAC_CALLS=$(tail -n "+$((CALLS_SEEN + 1))" "$CALLS" 2>/dev/null)
  CALLS_SEEN=$total
  [ "$rc" -eq 0 ] || echo "    (pacman exited $rc; log: $PAC_LOG)"
  return 0
}

# --- assertions ------------------------------------------------------------------------
ko() { compgen -G "$R/usr/lib/modules/$1/updates/dkms/$2.ko*" | head -n 1; }
state() { "$KMODSYNC" --root "$R" status --json 2>/dev/null >"$WORK/state.json" || echo '{"cells":[]}' >"$WORK/state.json"; }

# assert_module KV MODULE VERSION: installed for KV, built for it, in its modules.dep.
assert_module() {
  local file
  file=$(ko "$1" "$2")
  check "$2 $3 is in updates/dkms of $1" test -n "$file"
  [ -n "$file" ] || return 0
  check_eq "$2 on $1: vermagic" "$1" "$(modinfo -F vermagic "$file" 2>/dev/null | cut -d' ' -f1)"
  check_eq "$2 on $1: version" "$3" "$(modinfo -F version "$file" 2>/dev/null)"
  check "$2 on $1: in modules.dep" grep -qE "^updates/dkms/$2\.ko(\.[a-z]+)?:" "$R/usr/lib/modules/$1/modules.dep"
  check_eq "$2 on $1: kmodsync status says $3 installed" "$3 installed" \
    "$(jq -r --arg m "$2" --arg k "$1" '[.cells[] | select(.module == $m and .kernel == $k and .state == "installed")][0] | "\(.version) \(.state)"' "$WORK/state.json")"
}

# assert_no_module KV MODULE: nothing of MODULE on KV, in files, modules.dep or state.
assert_no_module() {
  check "no $2.ko* in updates/dkms of $1" test -z "$(ko "$1" "$2")"
  if [ -f "$R/usr/lib/modules/$1/modules.dep" ]; then
    check "modules.dep of $1 does not name $2" test -z \
      "$(grep -E "^updates/dkms/$2\.ko(\.[a-z]+)?:" "$R/usr/lib/modules/$1/modules.dep")"
  fi
  check_eq "kmodsync status: $2 installed on $1" "" \
    "$(jq -r --arg m "$2" --arg k "$1" '.cells[] | select(.module == $m and .kernel == $k and .state == "installed") | .version' "$WORK/state.json")"
}

# assert_calls DESCRIPTION EXPECTED: the kmodsync commands the hooks of the last pacman ran.
assert_calls() { check_eq "$1: the hooks ran" "$2" "$(echo "$PAC_CALLS" | xargs -d '\n' | sed 's/ *$//')"; }

# assert_kernel_gone KV: kmodsync's modules left before pacman removed the kernel, and with
# them the kernel's directory (depmod's output goes with Arch's kmod hook).
assert_kernel_gone() {
  local left
  check "$1: no kmodsync module left under its directory" test -z \
    "$(find "$R/usr/lib/modules/$1" -name '*.ko*' 2>/dev/null)"
  left=$(cd "$R/usr/lib/modules/$1" 2>/dev/null && find . -mindepth 1 | sort | xargs)
  check_eq "$1: usr/lib/modules/$1 is gone (left in it: '$left')" no "$([ -e "$R/usr/lib/modules/$1" ] && echo yes || echo no)"
  check_eq "$1: kmodsync status has no cell for it" 0 \
    "$(jq --arg k "$1" '[.cells[] | select(.kernel == $k)] | length' "$WORK/state.json")"
}

log_mtime() { stat -c %Y "$R/var/lib/kmodsync/log/$1/$2.log" 2>/dev/null || echo none; }

# --- the flow --------------------------------------------------------------------------
phase "debootstrap bookworm (minbase); makepkg builds the packages meanwhile"
build_packages >"$WORK/makepkg.log" 2>&1 &
MAKEPKG_PID=$!
chroot_debootstrap
wait "$MAKEPKG_PID"
check_eq "makepkg builds the packages" 0 $?
for package in "kmshello 1.0" "kmshello 2.0" "kmsbroken 1.0" "linux-test 6.1.0.55" \
  "linux-test2 6.12.107" "linux-test2-headers 6.12.107"; do
  # shellcheck disable=SC2086
  check "package $package is built" test -n "$(pkgfile $package)"
done
check_eq "linux-test ships its build link" "usr/lib/modules/$K1/build -> /usr/src/linux-headers-$K1" \
  "$(bsdtar -tvf "$(pkgfile linux-test 6.1.0.55)" 2>/dev/null | awk '$9 ~ /\/build$/ {print $9, $10, $11}')"

phase "apt-get install the toolchain and kmodsync's libraries; cmake --install kmodsync"
chroot_apt_get update
check_eq "apt-get update in the chroot" 0 "$APT_RC"
mapfile -t LIBRARY_PACKAGES < <(runtime_packages "$KMODSYNC" "$HELPER")
# gcc, make, libc6-dev, kmod: what a pass runs; libelf1, libssl3, zlib1g, pahole: what the
# kbuild packages of the two kernels depend on.
chroot_apt_get install gcc make libc6-dev kmod libelf1 libssl3 zlib1g pahole "${LIBRARY_PACKAGES[@]}"
check_eq "apt-get install in the chroot (${#LIBRARY_PACKAGES[@]} library packages)" 0 "$APT_RC"
DESTDIR=$R cmake --install "$BUILD_DIR" --prefix /usr >"$LOGS/cmake-install.log" 2>&1
check_eq "cmake --install into the root" 0 $?
for hook in 70-kmodsync-install.hook 70-kmodsync-remove.hook; do
  check "$hook installed in usr/share/libalpm/hooks as written" \
    cmp "$SOURCE_DIR/hooks/pacman/$hook" "$R/usr/share/libalpm/hooks/$hook"
  check "$hook sorts before 90-mkinitcpio-install.hook" test "$hook" \< 90-mkinitcpio-install.hook
done
check "kmodsync-pacman-hook installed in usr/lib/kmodsync" test -x "$R/usr/lib/kmodsync/kmodsync-pacman-hook"
check_eq "no library missing for kmodsync or the helper in the root" "" \
  "$(in_root ldd /usr/bin/kmodsync /usr/lib/kmodsync/kmodsync-pacman-hook | grep 'not found' | xargs)"
# Every kmodsync command the hooks run is logged: /usr/bin/kmodsync becomes a wrapper.
mv "$R/usr/bin/kmodsync" "$R/usr/bin/kmodsync.real"
cat >"$R/usr/bin/kmodsync" <<'EOF'
#!/bin/bash
echo "$*" >>/var/log/kmodsync-calls.log
exec -a /usr/bin/kmodsync /usr/bin/kmodsync.real "$@"
EOF
chmod 755 "$R/usr/bin/kmodsync"
mkdir -p "$R/usr/share/libalpm/scripts" "$R/var/lib/pacman"
echo "$DEPMOD_SCRIPT" >"$R/usr/share/libalpm/scripts/depmod"
chmod 755 "$R/usr/share/libalpm/scripts/depmod"
for kv in "$K1" "$K2"; do
  for tree in $(header_trees "$kv"); do
    mountpoint -q "$R$tree" || bind_ro "$tree"
    check "host's $tree mounted read-only in the root" test -r "$R$tree/Makefile" -o -d "$R$tree/scripts"
  done
done
os_id=$(. "$R/etc/os-release" && echo "$ID")
echo "    (the root's os-release: ID=$os_id; modules go to updates/dkms on debian and arch alike)"

phase "pacman -U a kernel, then a module source"
pac "-U linux-test ($K1)" -U "$(pkgfile linux-test 6.1.0.55)"
if [ -z "$PAC_CALLS" ]; then
  # Without KMODSYNC the helper runs its compiled-in default, which must be /usr/bin/kmodsync.
  # When it is not, say so once and go on with KMODSYNC set, to test the rest.
  fail "the helper ran no /usr/bin/kmodsync (its output: '$(grep '^kmodsync' "$PAC_LOG" | head -n 2 | xargs)'); the next steps set KMODSYNC=/usr/bin/kmodsync"
  HOOK_ENV=(KMODSYNC=/usr/bin/kmodsync)
  pac "-R linux-test (KMODSYNC set from here on)" -R linux-test
  pac "-U linux-test again" -U "$(pkgfile linux-test 6.1.0.55)"
fi
assert_calls "-U linux-test" "sync --kernel $K1"
check "linux-test: depmod ran for $K1 (the kmod hook)" test -f "$R/usr/lib/modules/$K1/modules.dep"

pac "-U kmshello 1.0" -U "$(pkgfile kmshello 1.0)"
assert_calls "-U kmshello 1.0" "sync --module kmshello"
check "-U kmshello 1.0: kmodsync's report is in pacman's output" grep -q "kmshello/1.0 for $K1" "$PAC_LOG"
state
assert_module "$K1" kmshello 1.0

phase "an Arch-style kernel, then its headers package"
pac "-U linux-test2 ($K2, no headers)" -U "$(pkgfile linux-test2 6.12.107)"
assert_calls "-U linux-test2" "sync --kernel $K2"
state
check_eq "kmshello on $K2 without headers: skipped" skipped "$(cell_field "$WORK/state.json" kmshello "$K2" state)"
check "$K1 untouched by a pass for $K2" test -n "$(ko "$K1" kmshello)"
pac "-U linux-test2-headers (build/ directory)" -U "$(pkgfile linux-test2-headers 6.12.107)"
assert_calls "-U linux-test2-headers (a Target matches build/...)" "sync --kernel $K2"
state
assert_module "$K2" kmshello 1.0

phase "pacman -U kmshello 2.0 (an upgrade)"
k1_log_before=$(log_mtime "$K1" kmshello-1.0)
pac "-U kmshello 2.0" -U "$(pkgfile kmshello 2.0)"
# pacman counts a file that an upgrade drops (usr/src/kmshello-1.0/dkms.conf) as removed:
# the remove hook takes 1.0 off before its source goes, then the install hook builds 2.0.
assert_calls "-U kmshello 2.0" "uninstall kmshello/1.0 sync --module kmshello"
state
for kv in "$K1" "$K2"; do assert_module "$kv" kmshello 2.0; done
check_eq "kmshello 1.0: no cell left in kmodsync status" 0 \
  "$(jq '[.cells[] | select(.module == "kmshello" and .version == "1.0")] | length' "$WORK/state.json")"
check "kmshello 1.0's source is gone (pacman removed it whole)" test ! -e "$R/usr/src/kmshello-1.0"

phase "pacman -U a module that does not compile"
k1_log_before=$(log_mtime "$K1" kmshello-2.0)
pac "-U kmsbroken (fails to build)" -U "$(pkgfile kmsbroken 1.0)"
assert_calls "-U kmsbroken" "sync --module kmsbroken"
state
for kv in "$K1" "$K2"; do
  check_eq "kmsbroken on $kv: failed" failed "$(cell_field "$WORK/state.json" kmsbroken "$kv" state)"
  # status --json names the log as seen from the host (under --root).
  check "kmsbroken on $kv: the log holds the compiler error" grep -q "error: 'kmsbroken_no_such_symbol'" \
    "$(cell_field "$WORK/state.json" kmsbroken "$kv" log)"
  assert_module "$kv" kmshello 2.0
done
check_eq "kmshello on $K1 not rebuilt by kmsbroken's pass (log untouched)" "$k1_log_before" "$(log_mtime "$K1" kmshello-2.0)"
check "pacman's output names the failure" grep -q "kmsbroken/1.0.*failed\|failed.*kmsbroken" "$PAC_LOG"
pac "-R kmsbroken" -R kmsbroken
assert_calls "-R kmsbroken" "uninstall kmsbroken/1.0"
check "kmsbroken's source is gone" test ! -e "$R/usr/src/kmsbroken-1.0"

phase "pacman -R kmshello, then -U it again"
pac "-R kmshello" -R kmshello
assert_calls "-R kmshello" "uninstall kmshello/2.0"
state
for kv in "$K1" "$K2"; do assert_no_module "$kv" kmshello; done
check "kmshello 2.0's source is gone (pacman removed it whole)" test ! -e "$R/usr/src/kmshello-2.0"
pac "-U kmshello 2.0 again" -U "$(pkgfile kmshello 2.0)"
state
for kv in "$K1" "$K2"; do assert_module "$kv" kmshello 2.0; done

phase "pacman -R the kernels"
pac "-R linux-test" -R linux-test
assert_calls "-R linux-test" "kernel-remove $K1"
state
assert_kernel_gone "$K1"
assert_module "$K2" kmshello 2.0
pac "-R linux-test2 linux-test2-headers (one transaction)" -R linux-test2 linux-test2-headers
assert_calls "-R linux-test2 linux-test2-headers" "kernel-remove $K2"
state
assert_kernel_gone "$K2"

phase "pacman -U a kernel and a module source in one transaction"
pac "-R kmshello (no kernel left)" -R kmshello
pac "-U linux-test kmshello 1.0" -U "$(pkgfile linux-test 6.1.0.55)" "$(pkgfile kmshello 1.0)"
assert_calls "-U linux-test kmshello (one pass)" "sync"
state
assert_module "$K1" kmshello 1.0

phase "tear down"
chroot_teardown
check "nothing mounted under the work directory" test -z "$(mounts_under "$WORK")"
check_eq "host's pacman, libalpm, /usr/lib/modules, /usr/src, /var/lib/kmodsync unchanged" "$HOST_BEFORE" "$(host_snapshot)"
phase ""
TIMINGS+=("total: $(($(date +%s) - SUITE_START)) s")
printf '  time  %s\n' "${TIMINGS[@]}"
finish
