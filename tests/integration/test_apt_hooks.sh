#!/usr/bin/env bash
# The apt hook (BUILD/hooks/apt/kmodsync-apt-hook: DPkg::Pre-Install-Pkgs protocol 3 and
# DPkg::Post-Invoke) and the Debian /etc/kernel hooks (hooks/debian-kernel), under real
# apt-get and dpkg, in two parts:
#
# 1. "root": an apt root of the suite's own (no chroot): R/etc/apt, R/var/lib/dpkg, a local
#    repository of .debs built here (module sources from tests/dkms_cli/fixtures, kernel-
#    like packages whose build links point at the host's real headers, one irrelevant
#    package), apt-get with APT_CONFIG naming Dir "R/" and a dpkg that works on R. The
#    shipped apt.conf snippet (hooks/apt/50kmodsync) is installed in R/etc/apt/apt.conf.d
#    with the build's hook and `--kmodsync WRAPPER`, a wrapper that counts the passes and
#    runs this build's kmodsync. After each apt-get: its status, the .ko files under
#    updates/dkms (vermagic, version), modules.dep, `kmodsync status --json` and how many
#    passes ran with which arguments. The /etc/kernel hook scripts are run the way
#    Debian's kernel packages run them (run-parts --arg=KV, DEB_MAINT_PARAMS) on the same
#    root (KMODSYNC=WRAPPER, KMODSYNC_ROOT=R).
# 2. "chroot": a debootstrap'd Debian 12 with the drop-in kmodsync .deb
#    (packaging/deb/make-dropin-deb.sh, i.e. what `cmake --install` installs, hooks
#    included), the real acpi-call-dkms, and the real linux-image and linux-headers of
#    6.12.107+deb12 installed and removed with apt-get: acpi_call is built for the new
#    kernel exactly once (by whichever hook comes first; the others find it up to date) and
#    dropped with it. /usr/bin/kmodsync is diverted to a shim that logs every call
#    (/var/log/kmodsync-calls.log in the chroot) and runs the real one.
#
# KMODSYNC_APT_HOOKS_PARTS="root chroot" (default) chooses the parts.
# KMODSYNC_APT_HOOKS_KEEP=1 keeps the chroot (beside the work directory).
# Nothing outside the work directory is written: the suite checks the host's dpkg and apt
# state, /usr/src, /usr/lib/modules/*/updates and /var/lib/kmodsync at the end.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/module_checks.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE_DIR=$(cd "$HERE/../.." && pwd)
FIXTURES=$SOURCE_DIR/tests/dkms_cli/fixtures
KERNEL_HOOKS=$SOURCE_DIR/hooks/debian-kernel
SHIPPED_SNIPPET=$SOURCE_DIR/hooks/apt/50kmodsync
BUILD_DIR=$(realpath -m "$(dirname "$KMODSYNC")/..")
HOOK=$BUILD_DIR/hooks/apt/kmodsync-apt-hook
PARTS=" ${KMODSYNC_APT_HOOKS_PARTS:-root chroot} "
want() { [[ $PARTS == *" $1 "* ]]; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg --root, debootstrap, chroot, mount)"
[ -x "$HOOK" ] || skip "the apt hook is not built ($HOOK; libapt-pkg-dev missing?)"
[ -f "$SHIPPED_SNIPPET" ] || skip "no $SHIPPED_SNIPPET"
require_tools apt-get apt-config dpkg dpkg-deb dpkg-query dpkg-scanpackages run-parts jq modinfo make gcc \
  sha256sum realpath
require_headers "$K1" "$K2"
if want chroot; then
  require_tools debootstrap chroot mount umount mountpoint findmnt dpkg-shlibdeps cmake
  [ -f "$BUILD_DIR/CMakeCache.txt" ] || skip "$KMODSYNC is not BUILD_DIR/core/kmodsync of a CMake build"
fi

R=$WORK/chroot
[ "${KMODSYNC_APT_HOOKS_KEEP:-0}" = 1 ] && R=$WORK-chroot
LOGS=$WORK/logs
CHROOT_KEEP=${KMODSYNC_APT_HOOKS_KEEP:-0}
CHROOT_SAVED_LOGS=(/var/log/kmodsync-calls.log)
source "$HERE/chroot_lib.sh"

# refute DESCRIPTION COMMAND...: passes when the command fails.
refute() {
  local description=$1
  shift
  if "$@" >/dev/null 2>&1; then fail "$description"; else pass "$description"; fi
}
# ere TEXT: TEXT as an extended regular expression matching itself (6.12.107+deb12 has a +).
# shellcheck disable=SC2001
ere() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# --- the host, before -----------------------------------------------------------------
host_snapshot() {
  {
    sha256sum /var/lib/dpkg/status /var/lib/apt/extended_states 2>/dev/null
    ls -l /var/log/dpkg.log /var/log/apt 2>/dev/null
    find /var/lib/dpkg/info /var/lib/kmodsync /usr/src /usr/lib/modules/*/updates /var/cache/apt/archives \
      -maxdepth 1 -printf '%p %y %s\n' 2>/dev/null
  } | sort | sha256sum
}
HOST_BEFORE=$(host_snapshot)

# --- module files, modules.dep, state (any root) ----------------------------------------
# modules ROOT KV: the module names installed under updates/dkms (compression suffix off).
# installed_module ROOT KV NAME VERSION: NAME VERSION is a module of KV, built for KV,
# in modules.dep, recorded by status (VERSION "-": not checked).
installed_module() {
  local root=$1 kv=$2 name=$3 version=$4
  check_eq "$kv: $name.ko is under updates/dkms" "$name" "$(modules "$root" "$kv" | tr ' ' '\n' | grep -x "$name")"
  check_eq "$kv: $name's vermagic is $kv" "$kv" "$(modinfo_of "$root" "$kv" "$name" vermagic | cut -d' ' -f1)"
  [ "$version" = - ] ||
    check_eq "$kv: $name's version is $version" "$version" "$(modinfo_of "$root" "$kv" "$name" version)"
  check_eq "$kv: modules.dep names $name" 1 "$(in_modules_dep "$root" "$kv" "$name")"
  check_eq "$kv: status records $name's file in updates/dkms" "/usr/lib/modules/$kv/updates/dkms" \
    "$(status_paths "$root" "$name" "$kv" | grep "/$name\.ko" | xargs -r -n1 dirname |
        sed 's|^/lib/modules/|/usr/lib/modules/|' | sort -u | paste -sd' ')"
}
# output_cell FILE STATUS NAME/VERSION KV: the output has the reporter's line for that cell.
output_cell() {
  awk -v s="$2" -v c="$3" -v k="$4" '$1 == s && $2 == c && $3 == "for" && ($4 == k || $4 == k ":") { found = 1 }
    END { exit !found }' "$1"
}
# count_cell FILE STATUS NAME/VERSION KV: how many such lines.
count_cell() {
  awk -v s="$2" -v c="$3" -v k="$4" '$1 == s && $2 == c && $3 == "for" && ($4 == k || $4 == k ":") { n++ }
    END { print n + 0 }' "$1"
}
# count_compiled FILE CELL KV: cells installed by a compile ("installed CELL for KV: built in")
count_compiled() {
  awk -v c="$2" -v k="$3" '$1 == "installed" && $2 == c && $3 == "for" && $4 == k ":" && $5 == "built" && $6 == "in" { n++ }
    END { print n + 0 }' "$1"
}
# kmodsync_errors FILE: what the hook or kmodsync said went wrong (an error of the pass,
# an unusable command line, a hook that could not note the transaction).
kmodsync_errors() {
  grep -E '^kmodsync: (error|apt hook|cannot note|.*(is not installed|run `kmodsync sync`|some modules did not))' "$1" | head -n3
}

# === part 1: an apt root ===============================================================
if want root; then
phase "root: build the .debs and the apt root"
AR=$WORK/aptroot
REPO=$WORK/repo
STAGE=$WORK/stage
mkdir -p "$REPO" "$STAGE" "$WORK/bin" "$WORK/out"

# deb_stage NAME VERSION [DEPENDS]: an empty package tree, its path on stdout.
deb_stage() {
  local dir=$STAGE/$1_$2
  mkdir -p "$dir/DEBIAN"
  {
    echo "Package: $1"
    echo "Version: $2"
    echo "Architecture: all"
    echo "Maintainer: kmodsync tests <kmodsync@localhost>"
    [ -n "${3:-}" ] && echo "Depends: $3"
    echo "Description: kmodsync apt hook test fixture"
  } >"$dir/DEBIAN/control"
  echo "$dir"
}
deb_build() { # DIR: into the repository
  dpkg-deb --root-owner-group -Zgzip --build "$1" "$REPO/" >>"$WORK/dpkg-deb.log" 2>&1
}
# A module source package, NAME-dkms VERSION: /usr/src/NAME-VERSION from the fixture
# (other versions of kmshello: PACKAGE_VERSION and MODULE_VERSION changed).
module_deb() { # NAME VERSION
  local dir
  dir=$(deb_stage "$1-dkms" "$2")
  mkdir -p "$dir/usr/src"
  cp -a "$FIXTURES/$1-1.0" "$dir/usr/src/$1-$2"
  sed -i "s/^PACKAGE_VERSION=.*/PACKAGE_VERSION=\"$2\"/" "$dir/usr/src/$1-$2/dkms.conf"
  sed -i "s/MODULE_VERSION(\"1.0\")/MODULE_VERSION(\"$2\")/" "$dir/usr/src/$1-$2"/*.c
  deb_build "$dir"
}
# A headers-like package: /usr/lib/modules/KV/build -> the host's real headers (kmodsync
# resolves an absolute link the root lacks on the host, read-only) and modules.order.
headers_pkg() { echo "linux-headers-test-${1%-amd64}"; }
headers_deb() { # KV [DEPENDS]
  local dir
  dir=$(deb_stage "$(headers_pkg "$1")" 1.0 "${2:-}")
  mkdir -p "$dir/usr/lib/modules/$1"
  ln -s "/usr/src/linux-headers-$1" "$dir/usr/lib/modules/$1/build"
  : >"$dir/usr/lib/modules/$1/modules.order"
  deb_build "$dir"
}
module_deb kmshello 1.0
module_deb kmshello 2.0
module_deb kmsbroken 1.0
headers_deb "$K1"
# Debian's layout: the headers of a kernel come with a -common package beside them in
# /usr/src (linux-headers-6.12.107+deb12-common), installed in the same transaction.
COMMON=linux-headers-test-common-6.12.107+deb12
dir=$(deb_stage "$COMMON" 1.0)
mkdir -p "$dir/usr/src/linux-headers-6.12.107+deb12-common/include"
echo "the architecture-independent half of the headers" >"$dir/usr/src/linux-headers-6.12.107+deb12-common/include/README"
deb_build "$dir"
headers_deb "$K2" "$COMMON"
dir=$(deb_stage kmsdoc 1.0)
mkdir -p "$dir/usr/share/doc/kmsdoc"
echo "nothing kmodsync cares about" >"$dir/usr/share/doc/kmsdoc/README"
deb_build "$dir"
# -m: both versions of kmshello-dkms (by default only the newest is indexed). apt copies a
# Packages.gz into the root's lists (an uncompressed one it would link to).
(cd "$REPO" && dpkg-scanpackages -m . /dev/null >Packages 2>>"$WORK/dpkg-scanpackages.log" && gzip -k Packages)
check_eq "the repository indexes the 7 packages" 7 "$(grep -c '^Package:' "$REPO/Packages")"
check "kmshello-dkms 2.0 ships /usr/src/kmshello-2.0/dkms.conf" \
  sh -c "dpkg-deb -c '$REPO/kmshello-dkms_2.0_all.deb' | grep -q ' ./usr/src/kmshello-2.0/dkms.conf$'"
check_eq "the headers-like package ships the build link" "/usr/src/linux-headers-$K1" \
  "$(dpkg-deb -c "$REPO/$(headers_pkg "$K1")_1.0_all.deb" | sed -n "s|.* ./usr/lib/modules/$K1/build -> ||p")"

# The root: apt's and dpkg's directories, usr-merged, the host's os-release (Debian-like:
# modules go to updates/dkms).
mkdir -p "$AR"/etc/apt/{apt.conf.d,preferences.d,trusted.gpg.d,sources.list.d} \
  "$AR"/var/lib/dpkg/{info,updates} "$AR"/var/lib/apt/lists/partial "$AR"/var/cache/apt/archives/partial \
  "$AR"/var/log/apt "$AR"/usr/lib "$AR"/usr/src
: >"$AR/var/lib/dpkg/status"
: >"$AR/var/lib/dpkg/available"
ln -s usr/lib "$AR/lib"
cp /etc/os-release "$AR/etc/"
echo "deb [trusted=yes] file:$REPO ./" >"$AR/etc/apt/sources.list"

# dpkg on the root. The packages have no maintainer scripts (dpkg would chroot into R to
# run them), so no --force-script-chrootless: a script would fail rather than run on the host.
cat >"$WORK/bin/dpkg" <<EOF
#!/bin/sh
exec /usr/bin/dpkg --root='$AR' --admindir='$AR/var/lib/dpkg' --log='$AR/var/log/dpkg.log' \\
  --force-not-root --force-bad-path "\$@"
EOF
chmod +x "$WORK/bin/dpkg"

# The counting wrapper: one line per kmodsync process (its arguments), then this build's.
PASSES=$WORK/passes
: >"$PASSES"
WRAPPER=$WORK/bin/kmodsync
cat >"$WRAPPER" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>'$PASSES'
exec '$KMODSYNC' "\$@"
EOF
chmod +x "$WRAPPER"
passes() { wc -l <"$PASSES"; }
last_pass() { tail -n1 "$PASSES"; }

APTCONF=$WORK/apt.conf
cat >"$APTCONF" <<EOF
Dir "$AR/";
Dir::State::status "$AR/var/lib/dpkg/status";
Dir::Bin::dpkg "$WORK/bin/dpkg";
APT::Sandbox::User "root";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dpkg::Use-Pty "false";
EOF
# The shipped snippet, with the build's hook and the wrapper: the same lines, keys and
# protocol version as installed (its hook path is the key of DPkg::Tools::Options).
check "the shipped snippet names the installed hook in all three lines" \
  test "$(grep -c '/usr/lib/kmodsync/kmodsync-apt-hook' "$SHIPPED_SNIPPET")" -eq 3
sed -e "s|\"/usr/lib/kmodsync/kmodsync-apt-hook \\([a-z-]*\\)|\"$HOOK --kmodsync $WRAPPER \\1|" \
  -e "s|::/usr/lib/kmodsync/kmodsync-apt-hook::|::$HOOK::|" "$SHIPPED_SNIPPET" >"$AR/etc/apt/apt.conf.d/50kmodsync"
dump=$(APT_CONFIG=$APTCONF apt-config dump 2>&1)
check "apt reads the root's apt.conf.d: Pre-Install-Pkgs is the build's hook" \
  grep -qF "DPkg::Pre-Install-Pkgs:: \"$HOOK --kmodsync $WRAPPER pre-install-pkgs\"" <<<"$dump"
check "apt reads the root's apt.conf.d: protocol version 3 for the hook" \
  grep -qF "DPkg::Tools::Options::$HOOK::Version \"3\"" <<<"$dump"
check "apt reads the root's apt.conf.d: Post-Invoke is the build's hook" \
  grep -qF "DPkg::Post-Invoke:: \"$HOOK --kmodsync $WRAPPER post-invoke" <<<"$dump"

STEP=0
OUT=
aptr() { # apt-get ARGS... on the root; output in $OUT, status in $RC
  STEP=$((STEP + 1))
  OUT=$WORK/out/$STEP-apt-get.log
  APT_CONFIG=$APTCONF apt-get -q -y "$@" >"$OUT" 2>&1
  RC=$?
  echo "    [apt-get $* -> $RC, $OUT]" >>"$WORK/steps.log"
}
# ran_ok WHAT: the last apt-get exited 0, printed no apt error, and the hook and kmodsync
# complained of nothing.
ran_ok() {
  local error
  error=$({ grep -E -m1 '^E: ' "$OUT"; kmodsync_errors "$OUT"; } | head -n1)
  if [ "$RC" -eq 0 ] && [ -z "$error" ]; then pass "$1: apt-get exits 0, no error"; else fail "$1: exit $RC, ${error:-no error line} ($OUT)"; fi
  check "$1: the hook's transaction note is gone" test ! -e "$AR/var/lib/kmodsync/apt-transaction.json"
}
# one_pass BEFORE ARGS-REGEX: exactly one pass since BEFORE, `--root R sync` + ARGS.
one_pass() {
  check_eq "one kmodsync pass" $(($1 + 1)) "$(passes)"
  check "the pass is kmodsync --root $AR sync${2:+ $2}" \
    grep -Eqx -- "--root $(ere "$AR")/? sync${2:+ $2}" <<<"$(last_pass)"
}
dpkg_has() { dpkg-query --admindir="$AR/var/lib/dpkg" -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
# kmodsync_lines: the hook's and kmodsync's lines in the output (not paths naming the suite).
kmodsync_lines() { grep -cE '^(kmodsync: |  [a-z-]+ +[^ ]+/[^ ]+ for )' "$OUT" || true; }

phase "root: apt-get update, install, upgrade, remove"
echo "apt-get update"
aptr update
ran_ok "apt-get update"
check "the lists are in the root" test -f "$(compgen -G "$AR/var/lib/apt/lists/*Packages" | head -n1)"
check "apt-get knows both versions of kmshello-dkms" \
  test "$(APT_CONFIG=$APTCONF apt-cache madison kmshello-dkms 2>/dev/null | wc -l)" -eq 2

echo "apt-get install $(headers_pkg "$K1") kmshello-dkms=1.0: two relevant packages, one pass"
before=$(passes)
aptr install "$(headers_pkg "$K1")" kmshello-dkms=1.0
ran_ok "install"
check "dpkg's database in the root lists kmshello-dkms" dpkg_has kmshello-dkms
check "dpkg's list of kmshello-dkms is in the root" grep -qx /usr/src/kmshello-1.0/dkms.conf "$AR/var/lib/dpkg/info/kmshello-dkms.list"
check "the host's dpkg does not list it" test ! -e /var/lib/dpkg/info/kmshello-dkms.list
check "the build link is in the root" test -L "$AR/usr/lib/modules/$K1/build"
one_pass "$before" ""
check "apt-get's output has the cell" output_cell "$OUT" installed kmshello/1.0 "$K1"
installed_module "$AR" "$K1" kmshello 1.0
check_eq "status" "kmshello/1.0 $K1 installed" "$(matrix "$AR")"

echo "apt-get install $(headers_pkg "$K2") (and $COMMON): built for $K2 only"
before=$(passes)
k1_module=$(file_id "$AR" "$K1" kmshello)
aptr install "$(headers_pkg "$K2")"
ran_ok "install"
check "dpkg's database lists $COMMON too" dpkg_has "$COMMON"
one_pass "$before" "--kernel $(ere "$K2")"
check "apt-get's output has the cell" output_cell "$OUT" installed kmshello/1.0 "$K2"
installed_module "$AR" "$K2" kmshello 1.0
check_eq "status" "kmshello/1.0 $K1 installed,kmshello/1.0 $K2 installed" "$(matrix "$AR")"
check_eq "$K1's module was not rewritten" "$k1_module" "$(file_id "$AR" "$K1" kmshello)"

echo "apt-get install kmshello-dkms=2.0 (upgrade)"
before=$(passes)
aptr install kmshello-dkms=2.0
ran_ok "upgrade"
check_eq "dpkg has kmshello-dkms 2.0" 2.0 "$(dpkg-query --admindir="$AR/var/lib/dpkg" -W -f='${Version}' kmshello-dkms 2>/dev/null)"
one_pass "$before" "--module kmshello"
check "apt-get's output has the removed cell ($K1)" output_cell "$OUT" removed kmshello/1.0 "$K1"
check "apt-get's output has the removed cell ($K2)" output_cell "$OUT" removed kmshello/1.0 "$K2"
installed_module "$AR" "$K1" kmshello 2.0
installed_module "$AR" "$K2" kmshello 2.0
check_eq "status: 2.0 only" "kmshello/2.0 $K1 installed,kmshello/2.0 $K2 installed" "$(matrix "$AR")"
check "1.0's source is gone" test ! -e "$AR/usr/src/kmshello-1.0"
check_eq "one kmshello module file per kernel" "1 1" \
  "$(find "$AR/usr/lib/modules/$K1" -name 'kmshello.ko*' | wc -l) $(find "$AR/usr/lib/modules/$K2" -name 'kmshello.ko*' | wc -l)"

# The /etc/kernel hooks as Debian's kernel packages run them: run-parts --arg=KV
# [--arg=/boot/vmlinuz-KV], DEB_MAINT_PARAMS = the maintainer script's arguments.
echo "/etc/kernel hooks (run-parts) on the same root"
HOOKS_DIR=$WORK/etc-kernel
for kind in postinst.d header_postinst.d prerm.d; do mkdir -p "$HOOKS_DIR/$kind"; done
install -m 755 "$KERNEL_HOOKS/postinst" "$HOOKS_DIR/postinst.d/50-kmodsync"
install -m 755 "$KERNEL_HOOKS/postinst" "$HOOKS_DIR/header_postinst.d/50-kmodsync"
install -m 755 "$KERNEL_HOOKS/prerm" "$HOOKS_DIR/prerm.d/50-kmodsync"
for kind in postinst.d header_postinst.d prerm.d; do
  check_eq "run-parts runs $kind/50-kmodsync (a valid run-parts name)" "$HOOKS_DIR/$kind/50-kmodsync" \
    "$(run-parts --test "$HOOKS_DIR/$kind")"
done
KOUT=$WORK/out/kernel-hooks.log
: >"$KOUT"
kernel_hook() { # DEB_MAINT_PARAMS KIND ARG...: run-parts with KMODSYNC=WRAPPER on the root
  local params=$1 kind=$2 arg arguments=()
  shift 2
  for arg in "$@"; do arguments+=("--arg=$arg"); done
  echo "# DEB_MAINT_PARAMS='$params' run-parts ${arguments[*]} $kind" >>"$KOUT"
  env -u MAKEFLAGS KMODSYNC="$WRAPPER" KMODSYNC_ROOT="$AR" DEB_MAINT_PARAMS="$params" \
    run-parts --report --exit-on-error "${arguments[@]}" "$HOOKS_DIR/$kind" >>"$KOUT" 2>&1
}
before=$(passes)
kernel_hook "upgrade 1.0" prerm.d "$K2" "/boot/vmlinuz-$K2"
check_eq "prerm.d on an upgrade exits 0" 0 $?
check_eq "prerm.d on an upgrade: no kmodsync process" "$before" "$(passes)"
check_eq "prerm.d on an upgrade: $K2 keeps its module" kmshello "$(modules "$AR" "$K2")"
kernel_hook "remove" prerm.d "$K2" "/boot/vmlinuz-$K2"
check_eq "prerm.d on a removal exits 0" 0 $?
check_eq "prerm.d on a removal: kmodsync kernel-remove $K2" "kernel-remove $K2" "$(last_pass)"
check_eq "prerm.d on a removal: one process" $((before + 1)) "$(passes)"
check_eq "prerm.d on a removal: $K2's module is gone" "" "$(modules "$AR" "$K2")"
check_eq "prerm.d on a removal: status has no $K2 cell" "kmshello/2.0 $K1 installed" "$(matrix "$AR")"
kernel_hook "configure" postinst.d "$K2" "/boot/vmlinuz-$K2"
check_eq "postinst.d exits 0" 0 $?
check_eq "postinst.d: kmodsync sync --kernel $K2" "sync --kernel $K2" "$(last_pass)"
installed_module "$AR" "$K2" kmshello 2.0
k2_module=$(file_id "$AR" "$K2" kmshello)
kernel_hook "configure" header_postinst.d "$K2"
check_eq "header_postinst.d exits 0" 0 $?
check_eq "header_postinst.d: kmodsync sync --kernel $K2" "sync --kernel $K2" "$(last_pass)"
check "header_postinst.d: the pass finds the cell up to date" \
  grep -Eq "^ +up-to-date +kmshello/2.0 for $(ere "$K2")" "$KOUT"
check_eq "header_postinst.d: $K2's module was not rewritten" "$k2_module" "$(file_id "$AR" "$K2" kmshello)"
check_eq "status: 2.0 on both again" "kmshello/2.0 $K1 installed,kmshello/2.0 $K2 installed" "$(matrix "$AR")"
before=$(passes)
KMODSYNC="$WORK/no-such-kmodsync" DEB_MAINT_PARAMS=configure run-parts --arg="$K2" "$HOOKS_DIR/postinst.d" >>"$KOUT" 2>&1
check_eq "postinst.d without kmodsync exits 0" 0 $?
KMODSYNC=false DEB_MAINT_PARAMS=configure run-parts --arg="$K2" "$HOOKS_DIR/postinst.d" >>"$KOUT" 2>&1
check_eq "postinst.d whose kmodsync fails exits 0" 0 $?
KMODSYNC=false DEB_MAINT_PARAMS=remove run-parts --arg="$K2" "$HOOKS_DIR/prerm.d" >>"$KOUT" 2>&1
check_eq "prerm.d whose kmodsync fails exits 0" 0 $?
check_eq "no pass ran for those" "$before" "$(passes)"

echo "apt-get install kmsdoc (irrelevant): no kmodsync process"
before=$(passes)
aptr install kmsdoc
ran_ok "install"
check_eq "no kmodsync process" "$before" "$(passes)"
check_eq "apt-get's output has no kmodsync lines" 0 "$(kmodsync_lines)"
check "the package is installed" test -f "$AR/usr/share/doc/kmsdoc/README"

echo "apt-get remove $(headers_pkg "$K2"): $K2 is no longer a kernel, its cells are dropped"
before=$(passes)
aptr remove "$(headers_pkg "$K2")"
ran_ok "remove"
refute "dpkg's database no longer lists $(headers_pkg "$K2")" dpkg_has "$(headers_pkg "$K2")"
check "the build link of $K2 is gone" test ! -L "$AR/usr/lib/modules/$K2/build"
one_pass "$before" ""
check "apt-get's output has the removed cell" output_cell "$OUT" removed kmshello/2.0 "$K2"
check_eq "status has no $K2 cell" "kmshello/2.0 $K1 installed" "$(matrix "$AR")"
check_eq "$K2: no module file left under updates" "" "$(find "$AR/usr/lib/modules/$K2/updates" -type f 2>/dev/null)"
installed_module "$AR" "$K1" kmshello 2.0

echo "apt-get remove kmshello-dkms: uninstalled everywhere"
before=$(passes)
aptr remove kmshello-dkms
ran_ok "remove"
one_pass "$before" "--module kmshello"
check "apt-get's output has the removed cell" output_cell "$OUT" removed kmshello/2.0 "$K1"
check_eq "$K1: no kmshello module" "" "$(modules "$AR" "$K1")"
check_eq "$K1: modules.dep no longer names kmshello" 0 "$(in_modules_dep "$AR" "$K1" kmshello)"
check_eq "status has no cell" "" "$(matrix "$AR")"
check "the source is gone" test ! -e "$AR/usr/src/kmshello-2.0"

echo "apt-get install kmsbroken-dkms: the build fails, apt-get does not"
before=$(passes)
aptr install kmsbroken-dkms
check_eq "apt-get exits 0" 0 "$RC"
check "no apt error" test -z "$(grep -E '^E: ' "$OUT")"
check "dpkg's database lists kmsbroken-dkms as installed" dpkg_has kmsbroken-dkms
one_pass "$before" "--module kmsbroken"
check "apt-get's output names the failed cell" output_cell "$OUT" failed kmsbroken/1.0 "$K1"
log=$(sed -nE 's/^ +log: (.*kmsbroken.*)$/\1/p' "$OUT" | head -n1)
check "apt-get's output gives the failed cell's log" test -n "$log"
check "that log exists and has the compiler's error" grep -q kmsbroken_no_such_symbol "${log:-/nonexistent}"
check "the hook says apt's transaction itself succeeded" grep -q 'transaction itself succeeded' "$OUT"
check_eq "status" "kmsbroken/1.0 $K1 failed" "$(matrix "$AR")"
check_eq "$K1: no module" "" "$(modules "$AR" "$K1")"

echo "apt-get purge kmsbroken-dkms: its failed cell goes with it"
before=$(passes)
aptr purge kmsbroken-dkms
ran_ok "purge"
one_pass "$before" "--module kmsbroken"
check "apt-get's output has the removed cell" output_cell "$OUT" removed kmsbroken/1.0 "$K1"
check_eq "status has no cell" "" "$(matrix "$AR")"
check "the apt root's history names every apt-get" test "$(grep -c '^Commandline:' "$AR/var/log/apt/history.log")" -ge 8
echo "  passes run: $(passes) ($(paste -sd';' "$PASSES"))"
fi

# === part 2: a debootstrap chroot, real kernel packages ================================
if want chroot; then
updates() { echo "$R/lib/modules/$1/updates/dkms"; }
ko() { compgen -G "$(updates "$1")/$2.ko*" | head -n 1; }
calls() { cat "$R/var/log/kmodsync-calls.log" 2>/dev/null; }
calls_count() { calls | wc -l; }
# chroot_step DESCRIPTION APT-GET-ARGS...: apt-get in the chroot; it must exit 0, leave
# nothing unconfigured and show no kmodsync error.
chroot_step() {
  local description=$1 error
  shift
  chroot_apt_get "$@"
  check_eq "$description: apt-get exits 0" 0 "$APT_RC"
  check_eq "$description: no package left unconfigured" "" "$(unconfigured)"
  error=$(kmodsync_errors "$APT_LOG" | head -n1)
  check_eq "$description: no kmodsync error in apt-get's output" "" "$error"
  [ "$APT_RC" -eq 0 ] && [ -z "$error" ] || echo "    (apt-get exited $APT_RC; log: $APT_LOG)"
}
# acpi_call_installed KV
acpi_call_installed() {
  local kv=$1 file
  file=$(ko "$kv" acpi_call)
  check "$kv: acpi_call.ko* is in updates/dkms" test -n "$file"
  check_eq "$kv: acpi_call's vermagic is $kv" "$kv" \
    "$(in_root modinfo -F vermagic "${file#"$R"}" 2>/dev/null | cut -d' ' -f1)"
  check "$kv: modules.dep names acpi_call" \
    grep -qE "^updates/dkms/acpi_call\.ko(\.[a-z]+)?:" "$R/lib/modules/$kv/modules.dep"
  check_eq "$kv: kmodsync status says installed" "acpi-call/1.2.2 $kv installed" \
    "$(matrix "$R" | tr ',' '\n' | grep -E "^acpi-call/[^ ]* $(ere "$kv") ")"
}

phase "chroot: debootstrap bookworm (minbase)"
chroot_debootstrap

phase "chroot: build tools, headers of $K1, the kmodsync .deb"
in_root apt-get -q update >"$LOGS/apt-update.log" 2>&1
check_eq "apt-get update in the chroot" 0 $?
chroot_step "install build tools and the headers of $K1" install gcc make libc6-dev kmod "linux-headers-$K1"
deb=$(bash "$SOURCE_DIR/packaging/deb/make-dropin-deb.sh" "$BUILD_DIR" "$WORK/deb" 2>"$LOGS/make-dropin-deb.log")
check "make-dropin-deb.sh builds a .deb" test -f "$deb"
contents=$(dpkg-deb -c "$deb" 2>/dev/null | awk '{print $6}')
missing=()
for file in ./usr/lib/kmodsync/kmodsync-apt-hook ./etc/apt/apt.conf.d/50kmodsync \
  ./etc/kernel/postinst.d/50-kmodsync ./etc/kernel/header_postinst.d/50-kmodsync ./etc/kernel/prerm.d/50-kmodsync; do
  grep -qx "$file" <<<"$contents" || missing+=("$file")
done
check_eq "the .deb (cmake --install) has the apt hook, its snippet and the /etc/kernel hooks" "" "${missing[*]}"
cp "$deb" "$R/tmp/"
chroot_step "install the kmodsync .deb" install "/tmp/$(basename "$deb")"
check_eq "kmodsync in the chroot is this build" "$("$KMODSYNC" --version)" "$(in_root kmodsync --version 2>&1)"
check "apt in the chroot has the hook's Pre-Install-Pkgs" \
  grep -qF 'DPkg::Pre-Install-Pkgs:: "/usr/lib/kmodsync/kmodsync-apt-hook pre-install-pkgs"' <<<"$(in_root apt-config dump 2>&1)"
for kind in postinst.d header_postinst.d prerm.d; do
  check "run-parts runs /etc/kernel/$kind/50-kmodsync" \
    grep -qx "/etc/kernel/$kind/50-kmodsync" <<<"$(in_root run-parts --test "/etc/kernel/$kind")"
done
check_eq "the /etc hooks are conffiles of kmodsync" 4 \
  "$(in_root dpkg-query -W -f='${Conffiles}\n' kmodsync | grep -cE '^ /etc/(apt|kernel)/')"
# Every kmodsync process from now on, with who started it (a maintainer script's package
# and name, or "-" for apt's hook, which runs kmodsync with a clean environment).
in_root dpkg-divert --quiet --local --rename --add /usr/bin/kmodsync
cat >"$R/usr/bin/kmodsync" <<'EOF'
#!/bin/bash
echo "${DPKG_MAINTSCRIPT_PACKAGE:--} ${DPKG_MAINTSCRIPT_NAME:--}: $(basename "$0") $*" >>/var/log/kmodsync-calls.log
exec -a "$0" /usr/bin/kmodsync.distrib "$@"
EOF
chmod 755 "$R/usr/bin/kmodsync"

phase "chroot: apt-get install acpi-call-dkms"
chroot_step "install acpi-call-dkms" install acpi-call-dkms
acpi_call_installed "$K1"

phase "chroot: apt-get install linux-image-$K2 linux-headers-$K2"
calls_before=$(calls_count)
k1_module=$(stat -c '%i %Y' "$(ko "$K1" acpi_call)" 2>/dev/null)
chroot_step "install the $K2 kernel" install "linux-image-$K2" "linux-headers-$K2"
check "the kernel's modules are in the chroot" test -d "$R/lib/modules/$K2/kernel"
check "its headers are in the chroot" test -e "$R/lib/modules/$K2/build/include"
acpi_call_installed "$K2"
check_eq "acpi-call/1.2.2 was built for $K2 once (apt-get's output)" 1 \
  "$(count_compiled "$APT_LOG" acpi-call/1.2.2 "$K2")"
check_eq "acpi-call/1.2.2 was installed on $K2 once" 1 "$(count_cell "$APT_LOG" installed acpi-call/1.2.2 "$K2")"
check_eq "acpi-call/1.2.2 was not built again for $K1" 0 "$(count_compiled "$APT_LOG" acpi-call/1.2.2 "$K1")"
check_eq "$K1's module was not rewritten" "$k1_module" "$(stat -c '%i %Y' "$(ko "$K1" acpi_call)" 2>/dev/null)"
new_calls=$(calls | tail -n +$((calls_before + 1)))
check "the kernel's postinst.d hook ran kmodsync sync --kernel $K2" \
  grep -qxF "linux-image-$K2 postinst: kmodsync sync --kernel $K2" <<<"$new_calls"
check "the headers' header_postinst.d hook ran kmodsync sync --kernel $K2" \
  grep -qxF "linux-headers-$K2 postinst: kmodsync sync --kernel $K2" <<<"$new_calls"
check "apt's hook ran one pass after dpkg" grep -qE '^- -: kmodsync --root / sync' <<<"$new_calls"
echo "    kmodsync calls: $(paste -sd';' <<<"$new_calls")"

phase "chroot: apt-get remove linux-image-$K2 linux-headers-$K2"
calls_before=$(calls_count)
chroot_step "remove the $K2 kernel" remove "linux-image-$K2" "linux-headers-$K2"
check "the kernel's prerm.d hook ran kmodsync kernel-remove $K2" \
  grep -qxF "linux-image-$K2 prerm: kmodsync kernel-remove $K2" <<<"$(calls | tail -n +$((calls_before + 1)))"
check_eq "status has no $K2 cell" "" "$(matrix "$R" | tr ',' '\n' | grep -E " $(ere "$K2") " || true)"
check_eq "no acpi_call under /lib/modules/$K2/updates/dkms" "" "$(ko "$K2" acpi_call)"
acpi_call_installed "$K1"
echo "    kmodsync calls: $(calls | tail -n +$((calls_before + 1)) | paste -sd';')"

phase "chroot: tear down"
chroot_teardown
check "nothing mounted under the work directory" test -z "$(mounts_under "$WORK")"
fi

check_eq "the host's dpkg and apt state, /usr/src, modules and /var/lib/kmodsync are unchanged" \
  "$HOST_BEFORE" "$(host_snapshot)"
phase ""
TIMINGS+=("total: $(($(date +%s) - SUITE_START)) s")
printf '  time  %s\n' "${TIMINGS[@]}"
finish
