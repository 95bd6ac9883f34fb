#!/usr/bin/env bash
# The librpm transaction plugin (BUILD/plugins/rpm/kmodsync.so) under real rpm 4.18 and
# dnf 4: packages built here with rpmbuild (module sources from tests/dkms_cli/fixtures,
# kernel-like packages whose build links point at the host's real Debian headers, one
# irrelevant package) are installed, upgraded and erased in throwaway roots, and after each
# transaction the suite asserts the .ko files under updates/dkms (vermagic, version),
# modules.dep, `kmodsync status --json` and how many kmodsync passes ran. The plugin
# is given a wrapper as its option (the binary to run) that counts the passes and then
# runs this build's kmodsync.
#
# The contract: rpm loads kmodsync.so when %__plugindir and %__transaction_kmodsync are
# set; at the end of a real (not --test) transaction that added or erased a kernel, kernel
# headers or a module source it runs one `kmodsync --root ROOT sync ...`, whose cells
# appear in rpm's output; a failing cell never fails rpm; a transaction with nothing
# relevant starts no process. dnf runs a test transaction before the real one: still one
# pass per dnf command. dnf gets the macros (and %_dbpath: Debian's default is ~/.rpmdb)
# from ~/.rpmmacros, read by its librpm: HOME points at a directory of the suite's.
#
# Nothing outside the work directory is written: the suite checks that the host's
# /var/lib/rpm, /usr/lib/modules, /usr/src, dnf's directories and ~/.rpmdb are as they
# were.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/module_checks.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures
SPECS=$HERE/rpm
PLUGIN=$(realpath -m "$(dirname "$KMODSYNC")/../plugins/rpm/kmodsync.so")

[ -f "$PLUGIN" ] || skip "the rpm plugin is not built ($PLUGIN; librpm-dev missing?)"
[ "$(id -u)" -eq 0 ] || skip "needs root (rpm --root chroots)"
require_tools rpm rpmbuild dnf createrepo_c jq modinfo make gcc sha256sum
require_headers "$K1" "$K2"

SUITE_START=$SECONDS
PHASE_START=$SECONDS
TIMINGS=()
phase_done() {
  TIMINGS+=("$1 $((SECONDS - PHASE_START))s")
  PHASE_START=$SECONDS
}

# --- the host, before -----------------------------------------------------------------
HOST_HOME=${HOME:-/root}
host_snapshot() {
  {
    find /var/lib/rpm "$HOST_HOME/.rpmdb" -type f -exec sha256sum {} + 2>/dev/null
    find /var/lib/rpm /usr/lib/modules /usr/src /var/lib/kmodsync /var/lib/dnf /var/cache/dnf \
      /var/log/dnf.log /var/log/dnf.rpm.log "$HOST_HOME/.rpmdb" "$HOST_HOME/.rpmmacros" \
      -printf '%p %y %s %T@ %l\n' 2>/dev/null
  } | sort | sha256sum
}
HOST_BEFORE=$(host_snapshot)
# rpm and rpmbuild read ~/.rpmmacros and (rpm -qp) create ~/.rpmdb: give them a home of
# the suite's own, empty for rpm, with the plugin's macros for dnf.
export HOME=$WORK/home
mkdir -p "$HOME"

# The plugin directory rpm is given holds a copy of this build's kmodsync.so, and nothing
# else: a rebuild during the run does not change it under rpm (a half-written .so is an
# rpm error), and no other plugin that rpm's macros name (%__transaction_syslog, ...) is
# looked for there.
PLUGIN_DIR=$WORK/rpm-plugins
mkdir -p "$PLUGIN_DIR"
cp "$PLUGIN" "$PLUGIN_DIR/kmodsync.so"

# --- packages -------------------------------------------------------------------------
TOP=$WORK/rpmbuild
RPMS=$TOP/RPMS/noarch
SRC=$WORK/src
mkdir -p "$TOP" "$SRC"
cp -a "$FIXTURES/kmshello-1.0" "$FIXTURES/kmsbroken-1.0" "$FIXTURES/kmsexcl-1.0" "$SRC/"
cp -a "$FIXTURES/kmshello-1.0" "$SRC/kmshello-2.0"
sed -i 's/^PACKAGE_VERSION=.*/PACKAGE_VERSION="2.0"/' "$SRC/kmshello-2.0/dkms.conf"
sed -i 's/MODULE_VERSION("1.0")/MODULE_VERSION("2.0")/' "$SRC/kmshello-2.0/hello.c"

build_rpm() { # SPEC DEFINE...
  local spec=$1 define arguments=()
  shift
  for define in "$@"; do arguments+=(--define "$define"); done
  rpmbuild -bb --nodeps --quiet --define "_topdir $TOP" "${arguments[@]}" "$SPECS/$spec" \
    >>"$WORK/rpmbuild.log" 2>&1
}
module_rpm() { # NAME VERSION
  build_rpm module-source.spec "pkgname $1" "pkgversion $2" "srcdir $SRC/$1-$2"
}
module_rpm kmshello 1.0
module_rpm kmshello 2.0
module_rpm kmsbroken 1.0
module_rpm kmsexcl 1.0
build_rpm kernel.spec "kv $K1"
build_rpm kernel.spec "kv $K2"
build_rpm doc.spec
HELLO1=$RPMS/kmshello-1.0-1.noarch.rpm
HELLO2=$RPMS/kmshello-2.0-1.noarch.rpm
BROKEN=$RPMS/kmsbroken-1.0-1.noarch.rpm
EXCL=$RPMS/kmsexcl-1.0-1.noarch.rpm
KERNEL1=$RPMS/kernel-core-$K1-1-1.noarch.rpm
KERNEL2=$RPMS/kernel-core-$K2-1-1.noarch.rpm
DOC=$RPMS/kmsdoc-1.0-1.noarch.rpm
for package in "$HELLO1" "$HELLO2" "$BROKEN" "$EXCL" "$KERNEL1" "$KERNEL2" "$DOC"; do
  [ -f "$package" ] || { fail "rpmbuild made $(basename "$package") (see $WORK/rpmbuild.log)"; finish; exit; }
done
pass "rpmbuild made the 7 packages"
check "kmshello-2.0 ships its dkms.conf" \
  sh -c "rpm --dbpath '$WORK/querydb' -qlp '$HELLO2' 2>/dev/null | grep -qx /usr/src/kmshello-2.0/dkms.conf"
check_eq "the kernel package ships the build link" "/usr/src/linux-headers-$K1" \
  "$(rpm --dbpath "$WORK/querydb" -qp --qf '[%{FILENAMES} %{FILELINKTOS}\n]' "$KERNEL1" 2>/dev/null |
      awk -v f="/usr/lib/modules/$K1/build" '$1 == f { print $2 }')"
phase_done rpmbuild

# --- the counting wrapper, the root, the assertions ---------------------------------------
PASSES=$WORK/passes
: >"$PASSES"
WRAPPER=$WORK/bin/kmodsync
mkdir -p "$WORK/bin"
cat >"$WRAPPER" <<EOF
#!/bin/sh
# One line per kmodsync process the plugin starts, then the real kmodsync.
printf '%s\n' "\$*" >>'$PASSES'
exec '$KMODSYNC' "\$@"
EOF
chmod +x "$WRAPPER"
passes() { wc -l <"$PASSES"; }

make_rpm_root() { # DIR
  mkdir -p "$1/usr/lib" "$1/etc"
  ln -s usr/lib "$1/lib"
  cp /etc/os-release "$1/etc/"
}

R=$WORK/root
make_rpm_root "$R"
rpm --root "$R" --dbpath /var/lib/rpm --initdb 2>>"$WORK/rpm-stderr.log"
check "rpm --initdb made the root's database" test -f "$R/var/lib/rpm/rpmdb.sqlite"
# Debian-like roots get updates/dkms (Fedora's extra/): the root's os-release says which.
check "the root's os-release is Debian-like (modules go to updates/dkms)" \
  grep -Eq '^(ID|ID_LIKE)="?(.* )?(debian|ubuntu)' "$R/etc/os-release"

STEP=0
OUT=
rpmr() { # rpm ARGS... on R with the plugin; output in $OUT, status in $RC
  STEP=$((STEP + 1))
  OUT=$WORK/out/$STEP-rpm.log
  mkdir -p "$WORK/out"
  rpm --root "$R" --dbpath /var/lib/rpm --define "__plugindir $PLUGIN_DIR" \
    --define "__transaction_kmodsync $PLUGIN_DIR/kmodsync.so $WRAPPER" --nodeps "$@" >"$OUT" 2>&1
  RC=$?
  echo "    [rpm $* -> $RC, $OUT]" >>"$WORK/steps.log"
}

# modules ROOT KV: the module names installed under updates/dkms (compression suffix off).
# output_cell STATUS NAME/VERSION KV: the output has the reporter's line for that cell.
output_cell() {
  awk -v s="$1" -v c="$2" -v k="$3" '$1 == s && $2 == c && $3 == "for" && ($4 == k || $4 == k ":") { found = 1 }
    END { exit !found }' "$OUT"
}
kmodsync_lines() { grep -ci kmodsync "$OUT" || true; }
# hello_installed ROOT KV VERSION: kmshello VERSION is the module of KV, for KV, in modules.dep.
hello_installed() {
  local root=$1 kv=$2 version=$3
  check_eq "$kv: kmshello.ko is under updates/dkms" "kmshello" "$(modules "$root" "$kv" | tr ' ' '\n' | grep -x kmshello)"
  check_eq "$kv: kmshello's vermagic is $kv" "$kv" "$(modinfo_of "$root" "$kv" kmshello vermagic | cut -d' ' -f1)"
  check_eq "$kv: kmshello's version is $version" "$version" "$(modinfo_of "$root" "$kv" kmshello version)"
  check_eq "$kv: modules.dep names kmshello" 1 "$(in_modules_dep "$root" "$kv" kmshello)"
  check_eq "$kv: status records kmshello's file in updates/dkms" "/usr/lib/modules/$kv/updates/dkms" \
    "$(status_paths "$root" kmshello "$kv" | grep '/kmshello\.ko' | xargs -r -n1 dirname | sort -u | paste -sd' ')"
}
# ran_ok WHAT: the last rpm/dnf command exited 0 and printed no error (a plugin rpm cannot
# load is an error line, and fails the transaction).
ran_ok() {
  local error
  error=$(grep -Ei -m1 '^error' "$OUT")
  if [ "$RC" -eq 0 ] && [ -z "$error" ]; then pass "$1 exits 0, no error"; else fail "$1: exit $RC, ${error:-no error line} ($OUT)"; fi
}
# file_id ROOT KV NAME: inode and mtime of the installed module (to tell it was not rewritten).

phase_done setup

# --- rpm ------------------------------------------------------------------------------
echo "rpm -i the $K1 kernel alone"
before=$(passes)
rpmr -i "$KERNEL1"
ran_ok "rpm -i kernel"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
check "the pass is kmodsync --root R sync ..." sh -c "tail -n1 '$PASSES' | grep -Eq '^--root $R/? sync'"
check_eq "no module yet" "" "$(modules "$R" "$K1")"
check_eq "no cells yet" "" "$(matrix "$R")"
check "rpm's database lists the kernel" rpm --root "$R" --dbpath /var/lib/rpm -q "kernel-core-$K1"

echo "rpm -i kmshello-1.0"
before=$(passes)
rpmr -i "$HELLO1"
ran_ok "rpm -i kmshello"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
check "rpm's output has the cell" output_cell installed kmshello/1.0 "$K1"
hello_installed "$R" "$K1" 1.0
check_eq "status" "kmshello/1.0 $K1 installed" "$(matrix "$R")"

echo "rpm -i the $K2 kernel: kmshello is built for it"
before=$(passes)
k1_module=$(file_id "$R" "$K1" kmshello)
rpmr -i "$KERNEL2"
ran_ok "rpm -i kernel"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
check "rpm's output has the cell" output_cell installed kmshello/1.0 "$K2"
hello_installed "$R" "$K2" 1.0
check_eq "status" "kmshello/1.0 $K1 installed,kmshello/1.0 $K2 installed" "$(matrix "$R")"
check_eq "$K1's module was not rewritten" "$k1_module" "$(file_id "$R" "$K1" kmshello)"

echo "rpm -U kmshello-2.0"
before=$(passes)
rpmr -U "$HELLO2"
ran_ok "rpm -U"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
check "rpm's output has the removed cell ($K1)" output_cell removed kmshello/1.0 "$K1"
check "rpm's output has the removed cell ($K2)" output_cell removed kmshello/1.0 "$K2"
hello_installed "$R" "$K1" 2.0
hello_installed "$R" "$K2" 2.0
check_eq "status: 2.0 only" "kmshello/2.0 $K1 installed,kmshello/2.0 $K2 installed" "$(matrix "$R")"
check "1.0's source is gone" test ! -e "$R/usr/src/kmshello-1.0"
check_eq "one kmshello module file per kernel" "1 1" \
  "$(find "$R/usr/lib/modules/$K1" -name 'kmshello.ko*' | wc -l) $(find "$R/usr/lib/modules/$K2" -name 'kmshello.ko*' | wc -l)"

STATE=$R/var/lib/kmodsync/state.json
state_hash() { if [ -f "$STATE" ]; then sha256sum <"$STATE"; else echo "no state.json"; fi; }
root_listing() { find "$R" -path "$R/var/lib/rpm" -prune -o -printf '%p %y %s %T@\n' | sort; }
echo "rpm -i --test kmsbroken kmsexcl: nothing changes"
before=$(passes)
state_before=$(state_hash)
listing_before=$(root_listing)
rpmr -i --test "$BROKEN" "$EXCL"
ran_ok "rpm -i --test"
check_eq "no kmodsync process" "$before" "$(passes)"
check_eq "rpm's output has no kmodsync lines" 0 "$(kmodsync_lines)"
check_eq "state.json unchanged" "$state_before" "$(state_hash)"
check "no file added, changed or removed in the root" test "$listing_before" = "$(root_listing)"

echo "rpm -i kmsbroken kmsexcl: one transaction, one pass; a failed cell does not fail rpm"
before=$(passes)
rpmr -i "$BROKEN" "$EXCL"
ran_ok "rpm -i"
check_eq "exactly one kmodsync pass for two packages" $((before + 1)) "$(passes)"
check "rpm's output names the failed cell ($K1)" output_cell failed kmsbroken/1.0 "$K1"
check "rpm's output names the failed cell ($K2)" output_cell failed kmsbroken/1.0 "$K2"
log=$(sed -nE 's/^ +log: (.*kmsbroken.*)$/\1/p' "$OUT" | head -n1)
check "rpm's output gives the failed cell's log" test -n "$log"
check "that log exists and has the compiler's error" grep -q kmsbroken_no_such_symbol "${log:-/nonexistent}"
check "rpm's database lists kmsbroken" rpm --root "$R" --dbpath /var/lib/rpm -q kmsbroken
check_eq "$K1: modules" "kmshello" "$(modules "$R" "$K1")"
check_eq "$K2: modules" "kmsexcl kmshello" "$(modules "$R" "$K2")"
check_eq "status: kmsbroken failed on both, kmsexcl only on $K2" \
  "$(printf '%s\n' "kmsbroken/1.0 $K1 failed" "kmsbroken/1.0 $K2 failed" "kmsexcl/1.0 $K2 installed" \
       "kmshello/2.0 $K1 installed" "kmshello/2.0 $K2 installed" | sort | paste -sd,)" \
  "$(matrix "$R" | tr ',' '\n' | grep -v "^kmsexcl/1.0 $K1 " | paste -sd,)"
check_eq "kmsexcl on $K1: not installed" "" "$(matrix "$R" | tr ',' '\n' | grep "^kmsexcl/1.0 $K1 installed" || true)"

echo "rpm -i kmsdoc (irrelevant): no kmodsync process"
before=$(passes)
rpmr -i "$DOC"
ran_ok "rpm -i"
check_eq "no kmodsync process" "$before" "$(passes)"
check_eq "rpm's output has no kmodsync lines" 0 "$(kmodsync_lines)"
check "the package is installed" test -f "$R/usr/share/doc/kmsdoc/README"

echo "rpm -e the $K2 kernel: its cells are dropped"
before=$(passes)
rpmr -e "kernel-core-$K2"
ran_ok "rpm -e"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
check "rpm's output has the removed cell (kmshello)" output_cell removed kmshello/2.0 "$K2"
check "rpm's output has the removed cell (kmsexcl)" output_cell removed kmsexcl/1.0 "$K2"
check_eq "status has no $K2 cell" "" "$(matrix "$R" | tr ',' '\n' | grep " $K2 " || true)"
check_eq "$K2: updates/dkms is gone or empty" "" "$(find "$R/usr/lib/modules/$K2/updates" -type f 2>/dev/null)"
check_eq "$K1 is untouched" "kmshello" "$(modules "$R" "$K1")"
hello_installed "$R" "$K1" 2.0

echo "rpm -e kmshello: uninstalled everywhere"
before=$(passes)
rpmr -e kmshello
ran_ok "rpm -e"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
check "rpm's output has the removed cell" output_cell removed kmshello/2.0 "$K1"
check_eq "$K1: no kmshello module" "" "$(modules "$R" "$K1")"
check_eq "$K1: modules.dep no longer names kmshello" 0 "$(in_modules_dep "$R" "$K1" kmshello)"
check_eq "status has no kmshello cell" "" "$(matrix "$R" | tr ',' '\n' | grep '^kmshello/' || true)"
check_eq "status keeps kmsbroken's failure" "kmsbroken/1.0 $K1 failed" "$(matrix "$R" | tr ',' '\n' | grep '^kmsbroken/' || true)"
phase_done rpm

# --- dnf ------------------------------------------------------------------------------
# A local repository of the same packages; dnf's librpm reads the plugin's macros and
# %_dbpath from ~/.rpmmacros (HOME is the suite's).
REPO=$WORK/repo
mkdir -p "$REPO"
cp "$HELLO1" "$HELLO2" "$KERNEL1" "$DOC" "$REPO/"
createrepo_c -q "$REPO" >>"$WORK/createrepo.log" 2>&1
check "createrepo_c made the repository" test -f "$REPO/repodata/repomd.xml"
DNF_HOME=$WORK/dnf-home
mkdir -p "$DNF_HOME"
cat >"$DNF_HOME/.rpmmacros" <<EOF
%_dbpath /var/lib/rpm
%__plugindir $PLUGIN_DIR
%__transaction_kmodsync %{__plugindir}/kmodsync.so $WRAPPER
EOF
# Not the host's /etc/dnf/dnf.conf: only this.
cat >"$WORK/dnf.conf" <<EOF
[main]
gpgcheck=0
installonly_limit=0
clean_requirements_on_remove=False
EOF
R2=$WORK/root-dnf
make_rpm_root "$R2"
dnfr() { # dnf ARGS... on R2; output in $OUT, status in $RC
  STEP=$((STEP + 1))
  OUT=$WORK/out/$STEP-dnf.log
  HOME=$DNF_HOME dnf -y --installroot "$R2" --config "$WORK/dnf.conf" --releasever 12 --noplugins \
    --repofrompath "local,file://$REPO" --repo local --setopt=reposdir=/nonexistent --nogpgcheck \
    "$@" >"$OUT" 2>&1
  RC=$?
  echo "    [dnf $* -> $RC, $OUT]" >>"$WORK/steps.log"
}
rpm2() { rpm --root "$R2" --dbpath /var/lib/rpm "$@" 2>/dev/null; }

echo "dnf install kernel-core-$K1 kmshello-1.0"
before=$(passes)
dnfr install "kernel-core-$K1" kmshello-1.0
ran_ok "dnf install"
check "dnf used the database ~/.rpmmacros names (R2/var/lib/rpm)" test -f "$R2/var/lib/rpm/rpmdb.sqlite"
check "not Debian's default ~/.rpmdb" test ! -e "$R2$DNF_HOME/.rpmdb"
check_eq "rpm lists what dnf installed" "kernel-core-$K1-1-1.noarch kmshello-1.0-1.noarch" \
  "$(rpm2 -qa --qf '%{NEVRA}\n' | sort | paste -sd' ')"
check_eq "one kmodsync pass (not one more for dnf's test transaction)" $((before + 1)) "$(passes)"
check "the pass is kmodsync --root R2 sync ..." sh -c "tail -n1 '$PASSES' | grep -Eq '^--root $R2/? sync'"
check "dnf's output has the cell" output_cell installed kmshello/1.0 "$K1"
hello_installed "$R2" "$K1" 1.0
check_eq "status" "kmshello/1.0 $K1 installed" "$(matrix "$R2")"

echo "dnf upgrade kmshello"
before=$(passes)
dnfr upgrade kmshello
ran_ok "dnf upgrade"
check_eq "rpm lists kmshello 2.0 only" "kmshello-2.0-1.noarch" "$(rpm2 -q kmshello)"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
hello_installed "$R2" "$K1" 2.0
check_eq "status: 2.0 only" "kmshello/2.0 $K1 installed" "$(matrix "$R2")"
check "1.0's source is gone" test ! -e "$R2/usr/src/kmshello-1.0"

echo "dnf install kmsdoc (irrelevant)"
before=$(passes)
dnfr install kmsdoc
ran_ok "dnf install"
check_eq "no kmodsync process" "$before" "$(passes)"
check "the package is installed" test -f "$R2/usr/share/doc/kmsdoc/README"

echo "dnf remove kmshello"
before=$(passes)
dnfr remove kmshello
ran_ok "dnf remove"
check "rpm no longer lists kmshello" sh -c "! rpm --root '$R2' --dbpath /var/lib/rpm -q kmshello"
check_eq "one kmodsync pass" $((before + 1)) "$(passes)"
check_eq "$K1: no kmshello module" "" "$(modules "$R2" "$K1")"
check_eq "$K1: modules.dep no longer names kmshello" 0 "$(in_modules_dep "$R2" "$K1" kmshello)"
check_eq "status has no cell" "" "$(matrix "$R2")"
phase_done dnf

# --- the host, after ------------------------------------------------------------------
check_eq "the host's rpm database, modules, /usr/src and dnf state are unchanged" "$HOST_BEFORE" "$(host_snapshot)"
check "no database under the suite's HOME (every rpm call named its --dbpath)" test ! -e "$HOME/.rpmdb"

echo "$SUITE: passes run: $(passes); timings: ${TIMINGS[*]}; total $((SECONDS - SUITE_START))s"
if [ "$FAILED" -ne 0 ]; then
  echo "$SUITE: transactions:"
  cat "$WORK/steps.log"
  echo "$SUITE: kmodsync passes (arguments):"
  sed 's/^/    /' "$PASSES"
fi
finish
