#!/usr/bin/env bash
# shellcheck disable=SC2016 # dpkg-query formats and awk programs, in single quotes
# kmodsync's own packages (packaging/build-packages.sh: packaging/debian, packaging/rpm/
# kmodsync.spec, packaging/arch/PKGBUILD), built from this work tree and installed for real:
# the .deb with apt-get into a Debian 12 chroot (debootstrap, tests/integration/chroot_lib.sh),
# which must pull its dependencies; the .rpm with `rpm --root` and the Arch package with
# `pacman --root` into the same chroot, one after the other, each after the previous one
# was removed.
#
# For each package the suite asserts: its metadata (provides dkms, conflicts with and
# replaces or obsoletes dkms, the configuration is a conffile / %config(noreplace) /
# backup), its file list (the binary, /usr/sbin/dkms, common.postinst, its own distribution's
# triggers and not the others', kernel-install plugin, unit, man page, completion,
# configuration, sysusers.d), that `kmodsync --version` runs in the root, that a real
# `kmodsync sync` there builds and installs a module (tests/dkms_cli/fixtures/kmshello-1.0,
# against the real linux-headers package apt installed in the chroot) whose vermagic is the
# kernel's, that a module package depending on dkms installs beside it (no dkms pulled in)
# and gets built by the package's own trigger (dh_dkms-style postinst calling
# common.postinst / the rpm plugin / the pacman hook), and that removing the packages
# leaves none of their files behind.
#
# Why one chroot: the rpm and Arch packages need glibc, libstdc++ and kmodsync's libraries
# and a toolchain in the root they go to, and the Debian host provides those libraries
# under the same sonames, so they are exactly what the .deb's dependencies pull in (the
# suite checks each soname the .rpm requires is there, after installing librpm9: the rpm
# plugin links rpm's own library, there on every rpm system). The chroot is a real system where
# scriptlets and hooks run chrooted, as on the target distributions. The rpm plugin runs in
# rpm's own process (the host's librpm): it is given the root's kmodsync.so and runs the
# root's kmodsync binary with --root, as an rpm --root transaction does.
#
# CI time (about 4 minutes on 2 CPUs): each package is compiled once, with -j2 and
# build-packages.sh -F (-O1, no debug information, a CMake unity build: the packaging is
# under test, not the optimiser); the .deb builds while debootstrap runs (its cache is
# shared with the other chroot suites), the .rpm while the .deb is tested, the Arch package
# while the .rpm is tested. KMODSYNC_PACKAGES_JOBS changes -j.
# KMODSYNC_PACKAGES_KEEP=1 keeps the chroot (beside the work directory).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/module_checks.sh"

K1=6.1.0-55-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE_DIR=$(cd "$HERE/../.." && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures
BUILD_PACKAGES=$SOURCE_DIR/packaging/build-packages.sh
JOBS=${KMODSYNC_PACKAGES_JOBS:-2}

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, mount, rpm --root, pacman --root)"
require_tools dpkg-buildpackage dh dpkg-deb rpmbuild rpm makepkg pacman bsdtar fakeroot zstd runuser \
  debootstrap chroot mount umount mountpoint findmnt cmake jq modinfo
require_headers "$K1"
[ -f "$BUILD_PACKAGES" ] || skip "$BUILD_PACKAGES is not written yet"

R=$WORK/root
[ "${KMODSYNC_PACKAGES_KEEP:-0}" = 1 ] && R=$WORK-root
LOGS=$WORK/logs
# shellcheck disable=SC2034 # read by chroot_lib.sh
CHROOT_KEEP=${KMODSYNC_PACKAGES_KEEP:-0}
# shellcheck disable=SC2034
CHROOT_SAVED_LOGS=(/var/log/pacman.log)
source "$HERE/chroot_lib.sh"

# --- the host, before -------------------------------------------------------------------
HOST_HOME=${HOME:-/root}
host_snapshot() {
  find /var/lib/rpm "$HOST_HOME/.rpmdb" "$HOST_HOME/.rpmmacros" /var/lib/pacman /var/cache/pacman \
    /usr/lib/modules /usr/src /var/lib/kmodsync /etc/kernel /etc/apt/apt.conf.d /usr/bin/kmodsync \
    -maxdepth 3 -printf '%p %y %s %T@ %l\n' 2>/dev/null | sort
}
HOST_BEFORE=$(host_snapshot)
export HOME=$WORK/home
mkdir -p "$HOME"

# Background builds run in sessions of their own, so that a suite that stops early ends
# them (and their compilers) by their process group.
BUILD_PIDS=()
end_builds() {
  local pid
  for pid in "${BUILD_PIDS[@]}"; do kill -- "-$pid" 2>/dev/null; done
  return 0
}
trap 'end_builds; chroot_teardown' EXIT

PKGS=$WORK/packages
mkdir -p "$PKGS"
# start_build FORMAT: build-packages.sh -F FORMAT in the background; its output in
# LOGS/build-FORMAT.out, its status in LOGS/build-FORMAT.rc.
start_build() {
  setsid bash -c 'bash "$1" -F -j "$2" -o "$3" "$4" >"$5.out" 2>&1; echo $? >"$5.rc"' _ \
    "$BUILD_PACKAGES" "$JOBS" "$PKGS" "$1" "$LOGS/build-$1" &
  BUILD_PIDS+=($!)
  BUILD_PID=$!
}
# wait_build FORMAT PID: waits; passes when it made a package (PACKAGE is its path).
wait_build() {
  local started=$SECONDS
  wait "$2"
  PACKAGE=$(grep -v -- '-dbgsym_\|-debuginfo-\|-debug-' "$LOGS/build-$1.out" | grep -E '\.(deb|rpm|pkg\.tar\.zst)$' | head -n 1)
  if [ "$(cat "$LOGS/build-$1.rc" 2>/dev/null)" = 0 ] && [ -f "$PACKAGE" ]; then
    pass "build-packages.sh $1 made $(basename "$PACKAGE") (waited $((SECONDS - started)) s)"
  else
    fail "build-packages.sh $1: no package (see $LOGS/build-$1.out and $PKGS/logs/$1.log)"
    sed 's/^/    /' "$LOGS/build-$1.out" | tail -n 15
    PACKAGE=
  fi
}

# --- a module package that depends on dkms, for each format -----------------------------
# kmsdemo: tests/dkms_cli/fixtures/kmshello-1.0 under another name, in /usr/src/kmsdemo-1.0.
DEMO=$WORK/kmsdemo-1.0
cp -a "$FIXTURES/kmshello-1.0" "$DEMO"
sed -i 's/kmshello/kmsdemo/g' "$DEMO"/*
# The Debian one, as dh_dkms makes them: Depends on dkms, the postinst calls common.postinst
# and the prerm `dkms remove`.
make_demo_deb() {
  local stage=$WORK/kmsdemo-deb
  mkdir -p "$stage/DEBIAN" "$stage/usr/src"
  cp -a "$DEMO" "$stage/usr/src/"
  cat >"$stage/DEBIAN/control" <<'EOF'
Package: kmsdemo-dkms
Version: 1.0-1
Architecture: all
Maintainer: kmodsync tests <kmodsync@localhost>
Depends: dkms (>= 3.0.3-4~)
Description: kmodsync test module source (DKMS)
 The kmsdemo module, built by dkms.
EOF
  cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    /usr/lib/dkms/common.postinst kmsdemo 1.0 /usr/share/kmsdemo-dkms "" "$2"
fi
EOF
  cat >"$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
case $1 in
    remove|upgrade|deconfigure)
        if [ "$(dkms status kmsdemo/1.0)" ]; then dkms remove kmsdemo/1.0 --all; fi ;;
esac
EOF
  chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm"
  dpkg-deb --root-owner-group --build "$stage" "$WORK/kmsdemo-dkms_1.0-1_all.deb"
}
make_demo_rpm() {
  cat >"$WORK/kmsdemo.spec" <<EOF
%global debug_package %{nil}
Name: kmsdemo-dkms
Version: 1.0
Release: 1
Summary: kmodsync test module source (DKMS)
License: GPL-2.0
BuildArch: noarch
Requires: dkms
%description
The kmsdemo module, built by dkms.
%install
mkdir -p %{buildroot}/usr/src
cp -a $DEMO %{buildroot}/usr/src/
%files
/usr/src/kmsdemo-1.0
EOF
  rpmbuild -bb --nodeps --define "_topdir $WORK/demo-rpm" --define "_dbpath $WORK/rpmdb" "$WORK/kmsdemo.spec"
}
make_demo_arch() {
  local dir=$WORK/demo-arch
  mkdir -p "$dir/files/usr/src" "$dir/out"
  cp -a "$DEMO" "$dir/files/usr/src/"
  cat >"$dir/PKGBUILD" <<'EOF'
pkgname=kmsdemo-dkms
pkgver=1.0
pkgrel=1
pkgdesc='kmodsync test module source (DKMS)'
arch=('any')
license=('GPL')
depends=('dkms')
options=('!strip' '!debug' '!zipman' '!purge')
package() {
  cp -a "$startdir/files/." "$pkgdir/"
}
EOF
  chown -R nobody:nogroup "$dir"
  (cd "$dir" && runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME="$dir" LANG=C.UTF-8 \
    PKGEXT=.pkg.tar.zst PKGDEST="$dir/out" BUILDDIR="$dir/build" SRCDEST="$dir" PACMAN=true \
    makepkg --nodeps --noconfirm --nocolor)
}

# --- checks -------------------------------------------------------------------------------
# has_files WHAT LIST ERE...: for each ERE, some line of LIST (one absolute path a line) is
# that path.
has_files() {
  local what=$1 list=$2 re
  shift 2
  for re in "$@"; do
    check "$what ships $(sed 's/\\//g; s/(\.gz)?$/[.gz]/' <<<"$re")" grep -Eqx "$re" "$list"
  done
}
# lacks_files WHAT LIST ERE: no line of LIST matches ERE (the other distributions' triggers).
lacks_files() {
  check_eq "$1 ships none of: $3" "" "$(grep -E "$3" "$2" | xargs)"
}
# files_of LIST: the entries of an installed package's LIST that are files or links to
# files in the root now (not directories, nor links to them such as a merged-usr /lib).
files_of() {
  local path
  while read -r path; do
    [ -n "$path" ] && [ ! -d "$R$path" ] && echo "$path"
  done <"$1"
  return 0
}
# left_behind FILES: those of FILES (from files_of) that still exist in the root.
left_behind() {
  local path
  while read -r path; do
    if [ -e "$R$path" ] || [ -L "$R$path" ]; then echo "$path"; fi
  done <"$1" | xargs
}
# removed_cleanly WHAT LIST: nothing of LIST left, nor the directories only kmodsync uses.
removed_cleanly() {
  local dir left=
  check_eq "$1: removing it leaves none of its $(wc -l <"$2") files" "" "$(left_behind "$2")"
  for dir in /etc/kmodsync /usr/lib/kmodsync /usr/lib/dkms /usr/share/doc/kmodsync /usr/share/doc/kmodsync-0.1.0; do
    [ -e "$R$dir" ] && left="$left $dir"
  done
  check_eq "$1: removing it leaves none of its directories" "" "${left# }"
}
# real_pass WHAT TAG: kmshello-1.0 copied into the root's /usr/src (no package, no
# trigger), then `kmodsync sync` in the root must build and install it for K1 (its output:
# LOGS/sync-TAG.log).
real_pass() {
  local out=$LOGS/sync-$2.log file
  rm -rf "$R/usr/src/kmshello-1.0"
  cp -a "$FIXTURES/kmshello-1.0" "$R/usr/src/"
  in_root kmodsync sync >"$out" 2>&1
  check_eq "$1: kmodsync sync in the root exits 0 (log: $out)" 0 $?
  check "$1: the pass built and installed kmshello/1.0 for $K1" \
    grep -Eq "^ *installed +kmshello/1\.0 for $K1" "$out"
  file=$(module_file "$R" "$K1" kmshello)
  check "$1: kmshello.ko* is in /usr/lib/modules/$K1/updates/dkms" test -n "$file"
  check_eq "$1: its vermagic is $K1's" "$K1" "$(modinfo -F vermagic "${file:-/nonexistent}" 2>/dev/null | cut -d' ' -f1)"
  check_eq "$1: modules.dep names it" 1 "$(in_modules_dep "$R" "$K1" kmshello)"
  check_eq "$1: kmodsync status in the root says installed" installed \
    "$(in_root kmodsync status --json 2>/dev/null | jq -r --arg k "$K1" '.cells[] | select(.module == "kmshello" and .kernel == $k) | .state')"
}
# demo_built WHAT: the module package's own trigger built kmsdemo for K1.
demo_built() {
  local file
  file=$(module_file "$R" "$K1" kmsdemo)
  check "$1: kmsdemo.ko* is in /usr/lib/modules/$K1/updates/dkms" test -n "$file"
  check_eq "$1: its vermagic is $K1's" "$K1" "$(modinfo -F vermagic "${file:-/nonexistent}" 2>/dev/null | cut -d' ' -f1)"
}
# runs_in_root WHAT: the installed binaries answer in the root.
runs_in_root() {
  check_eq "$1: kmodsync --version in the root" "kmodsync 0.1.0" "$(in_root kmodsync --version 2>&1)"
  check_eq "$1: dkms --version in the root is kmodsync's" "dkms-3.0.10 (kmodsync 0.1.0)" "$(in_root dkms --version 2>&1)"
  check "$1: the root has no library missing for kmodsync" sh -c "! chroot '$R' ldd /usr/bin/kmodsync | grep -q 'not found'"
}
# reset_root: what the last package's passes left (state, cache, built modules) goes, so
# the next package's pass builds from scratch.
reset_root() {
  rm -rf "$R/var/lib/kmodsync" "$R/usr/lib/modules/$K1/updates" "$R/usr/src/kmshello-1.0"
  in_root depmod "$K1" 2>/dev/null
  return 0
}

# --- the flow ------------------------------------------------------------------------------
phase "build the .deb (background); debootstrap bookworm, apt-get install linux-headers-$K1"
start_build deb
DEB_BUILD=$BUILD_PID
{ make_demo_deb && make_demo_rpm && make_demo_arch; } >"$LOGS/demo-packages.log" 2>&1
check "the kmsdemo-dkms test packages are built (log: $LOGS/demo-packages.log)" test -f "$WORK/kmsdemo-dkms_1.0-1_all.deb" \
  -a -f "$WORK/demo-rpm/RPMS/noarch/kmsdemo-dkms-1.0-1.noarch.rpm" -a -n "$(compgen -G "$WORK/demo-arch/out/kmsdemo-dkms-1.0-1-any.pkg.tar.zst")"
chroot_debootstrap
chroot_apt_get update
check_eq "apt-get update in the chroot" 0 "$APT_RC"
chroot_apt_get install "linux-headers-$K1"
check_eq "apt-get install linux-headers-$K1 in the chroot (log: $APT_LOG)" 0 "$APT_RC"
check "the chroot has $K1's build link" test -f "$R/usr/lib/modules/$K1/build/Makefile"
mkdir -p "$R/tmp/packages"
cp "$WORK/kmsdemo-dkms_1.0-1_all.deb" "$R/tmp/packages/"
phase "wait for the .deb"
wait_build deb "$DEB_BUILD"
DEB=$PACKAGE
start_build rpm
RPM_BUILD=$BUILD_PID

phase "deb: metadata and file list"
if [ -n "$DEB" ]; then
  check_eq "the .deb is kmodsync 0.1.0-1" "kmodsync 0.1.0-1" "$(dpkg-deb -f "$DEB" Package Version | awk '{print $2}' | xargs)"
  check "the .deb provides dkms at DKMS's version" grep -Eqx 'dkms \(= 3\.0\.10[^)]*\)' <<<"$(dpkg-deb -f "$DEB" Provides | tr ',' '\n' | sed 's/^ *//')"
  check_eq "the .deb conflicts with and replaces dkms" "dkms dkms" "$(dpkg-deb -f "$DEB" Conflicts Replaces | awk '{print $2}' | xargs)"
  check "the .deb depends on the libraries dpkg-shlibdeps found (libfmt9)" grep -q 'libfmt9' <<<"$(dpkg-deb -f "$DEB" Depends)"
  # libcurl is opened at run time for remote_cache: no shlibs dependency can name it.
  check "the .deb recommends libcurl (opened for remote_cache)" grep -q 'libcurl4' <<<"$(dpkg-deb -f "$DEB" Recommends)"
  dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed 's|^\./|/|; s|/$||' | grep -v '^/\?$' | sort >"$WORK/deb.list"
  has_files ".deb" "$WORK/deb.list" /usr/bin/kmodsync /usr/sbin/dkms /usr/lib/dkms/common\.postinst \
    /usr/lib/kmodsync/kmodsync-apt-hook /etc/apt/apt\.conf\.d/50kmodsync /etc/kernel/postinst\.d/50-kmodsync \
    /etc/kernel/header_postinst\.d/50-kmodsync /etc/kernel/prerm\.d/50-kmodsync \
    /usr/lib/kernel/install\.d/40-kmodsync\.install /lib/systemd/system/kmodsync\.service \
    '/usr/share/man/man8/kmodsync\.8(\.gz)?' /usr/share/bash-completion/completions/kmodsync \
    /etc/kmodsync/kmodsync\.conf /usr/lib/sysusers\.d/kmodsync\.conf /usr/share/doc/kmodsync/copyright
  lacks_files ".deb" "$WORK/deb.list" 'kmodsync\.so$|macros\.transaction_kmodsync|/libalpm/|kmodsync-pacman-hook'
  dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles >"$WORK/deb.conffiles" 2>/dev/null
  check "the .deb's conffiles list /etc/kmodsync/kmodsync.conf" grep -qx /etc/kmodsync/kmodsync.conf "$WORK/deb.conffiles"
fi

phase "deb: apt-get install it over Debian's dkms (dependencies from the archive)"
if [ -n "$DEB" ]; then
  cp "$DEB" "$R/tmp/packages/"
  check_eq "before: libfmt9 and libarchive13 are not in the chroot" "" \
    "$(in_root dpkg-query -W -f='${Package} ${db:Status-Status}\n' libfmt9 libarchive13 2>/dev/null | awk '$2 == "installed" {print $1}' | xargs)"
  chroot_apt_get install dkms
  check_eq "apt-get install dkms, the package kmodsync replaces (log: $APT_LOG)" 0 "$APT_RC"
  chroot_apt_get install "/tmp/packages/$(basename "$DEB")"
  check_eq "apt-get install ./kmodsync.deb (log: $APT_LOG)" 0 "$APT_RC"
  check_eq "dpkg says kmodsync is installed" "installed" "$(in_root dpkg-query -W -f='${db:Status-Status}' kmodsync 2>/dev/null)"
  check_eq "apt removed dkms for it (Conflicts, Replaces)" "config-files" \
    "$(in_root dpkg-query -W -f='${db:Status-Status}' dkms 2>/dev/null)"
  check_eq "apt pulled its dependencies (libfmt9, libarchive13, make, patch)" "libarchive13 libfmt9 make patch" \
    "$(in_root dpkg-query -W -f='${Package} ${db:Status-Status}\n' libfmt9 libarchive13 make patch 2>/dev/null | awk '$2 == "installed" {print $1}' | sort | xargs)"
  check_eq "no package left unconfigured" "" "$(unconfigured)"
  in_root dpkg -L kmodsync | sort >"$WORK/deb-installed.list"
  files_of "$WORK/deb-installed.list" >"$WORK/deb-installed.files"
  check "dpkg -L lists /usr/sbin/dkms" grep -qx /usr/sbin/dkms "$WORK/deb-installed.files"
  check_eq "/usr/sbin/dkms is a link to kmodsync" "../bin/kmodsync" "$(readlink "$R/usr/sbin/dkms")"
  check "the postinst created the build user _kmodsync" in_root getent passwd _kmodsync
  check "the unit is enabled (not started)" test -L "$R/etc/systemd/system/multi-user.target.wants/kmodsync.service"
  runs_in_root ".deb"
  real_pass ".deb" deb

  phase "deb: a *-dkms package depending on dkms"
  chroot_apt_get install /tmp/packages/kmsdemo-dkms_1.0-1_all.deb
  check_eq "apt-get install ./kmsdemo-dkms.deb (Depends: dkms) (log: $APT_LOG)" 0 "$APT_RC"
  check_eq "dkms itself was not installed" "" \
    "$(in_root dpkg-query -W -f='${db:Status-Status}' dkms 2>/dev/null | grep -x installed)"
  check "its postinst ran kmodsync's common.postinst" grep -q "kmsdemo/1.0 for $K1" <<<"$(configure_output kmsdemo-dkms)"
  demo_built ".deb's common.postinst"
  chroot_apt_get purge kmsdemo-dkms
  check_eq "apt-get purge kmsdemo-dkms (log: $APT_LOG)" 0 "$APT_RC"
  check "its prerm's dkms remove took kmsdemo off" test -z "$(module_file "$R" "$K1" kmsdemo)"

  phase "deb: apt-get purge kmodsync"
  chroot_apt_get purge kmodsync
  check_eq "apt-get purge kmodsync (log: $APT_LOG)" 0 "$APT_RC"
  check_eq "dpkg no longer knows kmodsync" "" "$(in_root dpkg-query -W -f='${db:Status-Status}' kmodsync 2>/dev/null | grep -v not-installed)"
  removed_cleanly ".deb" "$WORK/deb-installed.files"
  check "the unit's enablement link is gone" test ! -L "$R/etc/systemd/system/multi-user.target.wants/kmodsync.service"
  check "purge removed the build cache and logs" test ! -e "$R/var/lib/kmodsync/cache" -a ! -e "$R/var/lib/kmodsync/log"
fi
reset_root
phase "wait for the .rpm"
wait_build rpm "$RPM_BUILD"
RPMFILE=$PACKAGE
start_build arch
ARCH_BUILD=$BUILD_PID

rpmq() { rpm --dbpath "$WORK/rpmdb" "$@" 2>/dev/null; }
rpmr() { # rpm ARGS... on the root, from a clean environment; output in RPM_LOG, status in RPM_RC
  RPM_LOG=$LOGS/rpm-$((${RPM_STEP:=0} + 1)).log
  RPM_STEP=$((RPM_STEP + 1))
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME" LANG=C.UTF-8 \
    rpm --root "$R" --dbpath /var/lib/rpm "$@" >"$RPM_LOG" 2>&1
  RPM_RC=$?
}
phase "rpm: metadata and file list"
if [ -n "$RPMFILE" ]; then
  PLUGINDIR=$(rpm --eval '%{__plugindir}')
  check_eq "the .rpm is kmodsync 0.1.0-1" "kmodsync 0.1.0 1" "$(rpmq -qp --qf '%{NAME} %{VERSION} %{RELEASE}' "$RPMFILE")"
  check "the .rpm provides dkms = 3.0.10" grep -qx 'dkms = 3.0.10' <<<"$(rpmq -qp --provides "$RPMFILE")"
  check "the .rpm obsoletes dkms" grep -q '^dkms' <<<"$(rpmq -qp --obsoletes "$RPMFILE")"
  check "the .rpm conflicts with dkms" grep -qx dkms <<<"$(rpmq -qp --conflicts "$RPMFILE")"
  rpmq -qlp "$RPMFILE" | sort >"$WORK/rpm.list"
  has_files ".rpm" "$WORK/rpm.list" /usr/bin/kmodsync /usr/sbin/dkms /usr/lib/dkms/common\.postinst \
    "$PLUGINDIR/kmodsync\.so" /usr/lib/rpm/macros\.d/macros\.transaction_kmodsync \
    /usr/lib/kernel/install\.d/40-kmodsync\.install /usr/lib/systemd/system/kmodsync\.service \
    '/usr/share/man/man8/kmodsync\.8(\.gz)?' /usr/share/bash-completion/completions/kmodsync \
    /etc/kmodsync/kmodsync\.conf /usr/lib/sysusers\.d/kmodsync\.conf
  lacks_files ".rpm" "$WORK/rpm.list" '/etc/apt/|kmodsync-apt-hook|/etc/kernel/(postinst|header_postinst|prerm)\.d|/libalpm/|kmodsync-pacman-hook'
  check_eq "the configuration is %config(noreplace)" "/etc/kmodsync/kmodsync.conf cn" \
    "$(rpmq -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPMFILE" | grep '^/etc/kmodsync/kmodsync.conf ')"
  # Every library the .rpm requires by soname is in the root (what rpm on Fedora resolves);
  # the plugin's librpm is rpm's own, in every root rpm installs to.
  chroot_apt_get install librpm9
  check_eq "apt-get install librpm9 in the chroot (log: $APT_LOG)" 0 "$APT_RC"
  missing=
  for soname in $(rpmq -qp --requires "$RPMFILE" | sed -nE 's/^([^ (]+\.so[.0-9]*)\(\)\(64bit\)$/\1/p' | sort -u); do
    in_root ldconfig -p | grep -q "^[[:space:]]$soname (libc6,x86-64)" || missing="$missing $soname"
  done
  check_eq "every soname the .rpm requires is in the root" "" "${missing# }"
  check "the .rpm recommends libcurl (opened for remote_cache)" grep -qx 'libcurl' <<<"$(rpmq -qp --recommends "$RPMFILE")"
fi

phase "rpm: rpm --root -i"
if [ -n "$RPMFILE" ]; then
  cp "$RPMFILE" "$R/tmp/packages/"
  in_root userdel _kmodsync 2>/dev/null
  rpmr --initdb
  # --nodeps: the root's rpm database is empty; its libraries are dpkg's (checked above).
  rpmr -i --nodeps "$RPMFILE"
  check_eq "rpm -i kmodsync.rpm (log: $RPM_LOG)" 0 "$RPM_RC"
  check_eq "rpm lists kmodsync" kmodsync-0.1.0-1.x86_64 "$(rpm --root "$R" --dbpath /var/lib/rpm -q kmodsync 2>/dev/null)"
  rpm --root "$R" --dbpath /var/lib/rpm -ql kmodsync 2>/dev/null | sort >"$WORK/rpm-installed.list"
  files_of "$WORK/rpm-installed.list" >"$WORK/rpm-installed.files"
  check "%pre created the build user _kmodsync" in_root getent passwd _kmodsync
  check_eq "/usr/sbin/dkms is a link to kmodsync" "../bin/kmodsync" "$(readlink "$R/usr/sbin/dkms")"
  runs_in_root ".rpm"
  real_pass ".rpm" rpm

  phase "rpm: a module package requiring dkms, through the package's rpm plugin"
  # rpm loads the root's kmodsync.so, which runs the root's kmodsync with --root.
  plugin_defines=(--define "__plugindir $R$PLUGINDIR"
    --define "__transaction_kmodsync $R$PLUGINDIR/kmodsync.so $R/usr/bin/kmodsync")
  rpmr "${plugin_defines[@]}" -i "$WORK/demo-rpm/RPMS/noarch/kmsdemo-dkms-1.0-1.noarch.rpm"
  check_eq "rpm -i kmsdemo-dkms.rpm (Requires: dkms), dependencies checked (log: $RPM_LOG)" 0 "$RPM_RC"
  check "rpm's output has the plugin's pass" grep -Eq "^ *installed +kmsdemo/1\.0 for $K1" "$RPM_LOG"
  demo_built ".rpm's plugin"
  rpmr "${plugin_defines[@]}" -e kmsdemo-dkms
  check_eq "rpm -e kmsdemo-dkms (log: $RPM_LOG)" 0 "$RPM_RC"
  check "the plugin took kmsdemo off" test -z "$(module_file "$R" "$K1" kmsdemo)"

  phase "rpm: rpm -e kmodsync"
  rpmr -e kmodsync
  check_eq "rpm -e kmodsync (log: $RPM_LOG)" 0 "$RPM_RC"
  removed_cleanly ".rpm" "$WORK/rpm-installed.files"
fi
reset_root
phase "wait for the Arch package"
wait_build arch "$ARCH_BUILD"
ARCHPKG=$PACKAGE

PACMAN_CONF=$WORK/pacman.conf
mkdir -p "$WORK/pacman-hooks" "$WORK/pacman-cache" "$WORK/gnupg"
cat >"$PACMAN_CONF" <<'EOF'
[options]
Architecture = auto
SigLevel = Never
LocalFileSigLevel = Never
EOF
pac() { # pacman ARGS... on the root; output in PAC_LOG, status in PAC_RC
  PAC_LOG=$LOGS/pacman-$((${PAC_STEP:=0} + 1)).log
  PAC_STEP=$((PAC_STEP + 1))
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root \
    pacman --config "$PACMAN_CONF" --root "$R" --dbpath "$R/var/lib/pacman" --hookdir "$WORK/pacman-hooks" \
    --cachedir "$WORK/pacman-cache" --logfile "$R/var/log/pacman.log" --gpgdir "$WORK/gnupg" \
    --noconfirm --noprogressbar "$@" >"$PAC_LOG" 2>&1
  PAC_RC=$?
}
phase "arch: metadata and file list"
if [ -n "$ARCHPKG" ]; then
  bsdtar -xOf "$ARCHPKG" .PKGINFO >"$WORK/PKGINFO"
  check_eq "the package is kmodsync 0.1.0-1" "kmodsync 0.1.0-1" \
    "$(awk -F' = ' '$1 == "pkgname" || $1 == "pkgver" {print $2}' "$WORK/PKGINFO" | xargs)"
  for field in provides conflict replaces; do
    check_eq "the package's $field: dkms" dkms "$(awk -F' = ' -v f="$field" '$1 == f {print $2}' "$WORK/PKGINFO" | xargs)"
  done
  check "the package lists curl as optional (opened for remote_cache)" \
    grep -q '^optdepend = curl: remote_cache' "$WORK/PKGINFO"
  check_eq "the configuration is a backup file" etc/kmodsync/kmodsync.conf \
    "$(awk -F' = ' '$1 == "backup" {print $2}' "$WORK/PKGINFO" | xargs)"
  bsdtar -tf "$ARCHPKG" | grep -v '^\.' | sed 's|^|/|; s|/$||' | sort >"$WORK/arch.list"
  has_files "the Arch package" "$WORK/arch.list" /usr/bin/kmodsync /usr/bin/dkms /usr/lib/dkms/common\.postinst \
    /usr/lib/kmodsync/kmodsync-pacman-hook /usr/share/libalpm/hooks/70-kmodsync-install\.hook \
    /usr/share/libalpm/hooks/70-kmodsync-remove\.hook /usr/lib/kernel/install\.d/40-kmodsync\.install \
    /usr/lib/systemd/system/kmodsync\.service '/usr/share/man/man8/kmodsync\.8(\.gz)?' \
    /usr/share/bash-completion/completions/kmodsync /etc/kmodsync/kmodsync\.conf /usr/lib/sysusers\.d/kmodsync\.conf
  lacks_files "the Arch package" "$WORK/arch.list" \
    '/etc/apt/|kmodsync-apt-hook|/etc/kernel/(postinst|header_postinst|prerm)\.d|kmodsync\.so$|macros\.transaction|^/usr/sbin'
fi

phase "arch: pacman --root -U"
if [ -n "$ARCHPKG" ]; then
  mkdir -p "$R/var/lib/pacman"
  # -dd: the root's pacman database knows none of its dependencies (dpkg's, see above).
  pac -U --nodeps --nodeps "$ARCHPKG"
  check_eq "pacman -U kmodsync (log: $PAC_LOG)" 0 "$PAC_RC"
  check_eq "no warning or error from pacman" "" "$(grep -E '^(warning|error):' "$PAC_LOG" | head -n 3 | xargs)"
  # pacman prints the paths with the root in front.
  pacman --config "$PACMAN_CONF" --root "$R" --dbpath "$R/var/lib/pacman" -Qlq kmodsync 2>&1 |
    sed "s|^$R||; s|/\$||" | sort >"$WORK/arch-installed.list"
  files_of "$WORK/arch-installed.list" >"$WORK/arch-installed.files"
  check "pacman -Ql lists /usr/bin/dkms" grep -qx /usr/bin/dkms "$WORK/arch-installed.files"
  check_eq "/usr/bin/dkms is a link to kmodsync" kmodsync "$(readlink "$R/usr/bin/dkms")"
  runs_in_root "the Arch package"
  real_pass "the Arch package" arch

  phase "arch: a module package depending on dkms, through the package's pacman hooks"
  pac -U "$(compgen -G "$WORK/demo-arch/out/kmsdemo-dkms-1.0-1-any.pkg.tar.zst")"
  check_eq "pacman -U kmsdemo-dkms (depends=dkms), dependencies checked (log: $PAC_LOG)" 0 "$PAC_RC"
  check "pacman's output has the hook's pass" grep -Eq "^ *installed +kmsdemo/1\.0 for $K1" "$PAC_LOG"
  demo_built "the Arch package's hook"
  pac -R kmsdemo-dkms
  check_eq "pacman -R kmsdemo-dkms (log: $PAC_LOG)" 0 "$PAC_RC"
  check "the remove hook took kmsdemo off" test -z "$(module_file "$R" "$K1" kmsdemo)"

  phase "arch: pacman -R kmodsync"
  pac -R kmodsync
  check_eq "pacman -R kmodsync (log: $PAC_LOG)" 0 "$PAC_RC"
  removed_cleanly "the Arch package" "$WORK/arch-installed.files"
fi

phase "tear down"
end_builds
chroot_teardown
check "nothing mounted under the work directory" test -z "$(mounts_under "$WORK")"
check_eq "the host's rpm and pacman databases, modules, /usr/src, /etc/kernel, apt.conf.d unchanged" "" \
  "$(diff <(echo "$HOST_BEFORE") <(host_snapshot) | grep '^[<>]' | head -n 10)"
phase ""
TIMINGS+=("total: $(($(date +%s) - SUITE_START)) s")
printf '  time  %s\n' "${TIMINGS[@]}"
if [ "$FAILED" -gt 0 ]; then
  cp -a "$PKGS/logs" "$LOGS/package-builds" 2>/dev/null
fi
finish
