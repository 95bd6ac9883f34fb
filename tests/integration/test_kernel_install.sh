#!/usr/bin/env bash
# kmodsync's systemd kernel-install plugin (kernel-install.d/40-kmodsync.install) under the
# machine's real kernel-install (systemd 252), and kmodsync.service under systemd-analyze.
#
# The contract: `40-kmodsync.install add KV ENTRY_DIR IMAGE [INITRD...]` runs `kmodsync
# sync --kernel KV`, `remove KV ENTRY_DIR` runs `kmodsync kernel-remove KV`; $KMODSYNC names
# the binary (default: kmodsync on PATH), $KMODSYNC_ROOT the root; it always exits 0 (a
# module that does not build must not stop a kernel's installation, and an exit status of
# 77 would stop the plugins after it). `kernel-install add-all` (systemd 256+) calls add
# once per kernel: together those calls cost one pass's work, each building only its own
# kernel.
#
# kernel-install runs with KERNEL_INSTALL_PLUGINS naming only the plugin under test (not the
# host's /etc/kernel/install.d and /usr/lib/kernel/install.d), BOOT_ROOT and
# KERNEL_INSTALL_CONF_ROOT in the work directory and a fixed MACHINE_ID; BOOT_ROOT/MACHINE_ID
# exists, so the layout is bls (kernel-install creates and removes the entry directory).
# KMODSYNC is a wrapper that logs each call and runs this build's kmodsync; KMODSYNC_ROOT
# is a throwaway root with two kernels whose build links point at the host's real headers.
# The host's /usr/lib/modules, /var/lib/kmodsync and /boot are checked unchanged.
source "$(dirname "$0")/lib.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE_DIR=$(cd "$HERE/../.." && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures
PLUGIN=$SOURCE_DIR/kernel-install.d/40-kmodsync.install
UNIT=$SOURCE_DIR/packaging/kmodsync.service

require_tools kernel-install systemd-analyze jq modinfo make gcc
require_headers "$K1" "$K2"
[ -x "$PLUGIN" ] || skip "kernel-install.d/40-kmodsync.install is not written yet (or not executable)"
case $(kernel-install --version 2>/dev/null | head -n 1) in
  "kernel-install "*) ;;
  *) skip "kernel-install does not answer --version" ;;
esac
echo "$SUITE: $(kernel-install --version | head -n 1)"

SUITE_START=$SECONDS
host_snapshot() {
  find /usr/lib/modules /var/lib/kmodsync /boot -maxdepth 3 -printf '%p %y %s %T@ %l\n' 2>/dev/null | sort
}
HOST_BEFORE=$(host_snapshot)

R=$WORK/root
make_root "$R" "$K1" "$K2"
cp -a "$FIXTURES/kmshello-1.0" "$R/usr/src/"
BOOT=$WORK/boot
CONF=$WORK/kernel-conf
MACHINE_ID=0123456789abcdef0123456789abcdef
mkdir -p "$BOOT/$MACHINE_ID" "$CONF"
for kv in "$K1" "$K2"; do
  echo "placeholder kernel image for $kv" >"$WORK/vmlinuz-$kv"
done
echo "placeholder initrd" >"$WORK/initrd.img"

CALLS=$WORK/kmodsync-calls.log
WRAPPER=$WORK/bin/kmodsync
mkdir -p "$WORK/bin"
# The root reaches kmodsync as --root or as KMODSYNC_ROOT (kmodsync's default root): the
# log says which, as "root=R".
cat >"$WRAPPER" <<EOF
#!/bin/bash
args="\$*"
root=\${KMODSYNC_ROOT:-/}
if [ "\$1" = --root ]; then root=\$2; args=\${args#--root "\$2" }; fi
echo "\$args root=\$root" >>"$CALLS"
echo "\${KMODSYNC_PROGRESS:-unset}" >>"$CALLS.progress"
exec "$KMODSYNC" "\$@"
EOF
chmod 755 "$WRAPPER"
: >"$CALLS"

# ki DESCRIPTION ARGS...: runs kernel-install ARGS; it must exit 0. KI_OUT is its output,
# KI_CALLS the kmodsync commands the plugin ran.
CALLS_SEEN=0
ki() {
  local description=$1 rc
  shift
  local environment=(PATH=/usr/sbin:/usr/bin:/sbin:/bin KMODSYNC="$WRAPPER")
  # KI_KMODSYNC=path: KMODSYNC names that; KI_KMODSYNC=PATH: unset, the wrapper first on PATH.
  case ${KI_KMODSYNC:-} in
    "") ;;
    PATH) environment=(PATH="$WORK/bin:/usr/sbin:/usr/bin:/sbin:/bin") ;;
    *) environment=(PATH=/usr/sbin:/usr/bin:/sbin:/bin KMODSYNC="$KI_KMODSYNC") ;;
  esac
  KI_OUT=$(env -i "${environment[@]}" LANG=C.UTF-8 HOME="$WORK" \
    KERNEL_INSTALL_PLUGINS="$PLUGIN" BOOT_ROOT="$BOOT" KERNEL_INSTALL_CONF_ROOT="$CONF" \
    MACHINE_ID="$MACHINE_ID" KMODSYNC_ROOT="$R" kernel-install "$@" 2>&1)
  rc=$?
  check_eq "$description: kernel-install exits 0" 0 "$rc"
  [ "$rc" -eq 0 ] || printf '    %s\n' "$KI_OUT"
  KI_CALLS=$(tail -n "+$((CALLS_SEEN + 1))" "$CALLS")
  CALLS_SEEN=$(wc -l <"$CALLS")
  return 0
}
assert_calls() { check_eq "$1: the plugin ran" "$2" "$(echo "$KI_CALLS" | xargs -d '\n' | sed 's/ *$//')"; }

ko() { compgen -G "$R/usr/lib/modules/$1/updates/dkms/$2.ko*" | head -n 1; }
state() { "$KMODSYNC" --root "$R" status --json >"$WORK/state.json" 2>/dev/null || echo '{"cells":[]}' >"$WORK/state.json"; }
cells_of() { jq -c --arg k "$1" '[.cells[] | select(.kernel == $k)]' "$WORK/state.json"; }
# The raw state's record of a cell (its build time, input key, installed files' mtimes).
raw_cell() { jq -c --arg k "$1" '[.cells[] | select(.kernel == $k)]' "$R/var/lib/kmodsync/state.json" 2>/dev/null; }
log_mtime() { stat -c %Y "$R/var/lib/kmodsync/log/$1/kmshello-1.0.log" 2>/dev/null || echo none; }
# Cells a call worked on: compiled, or installed from kmodsync's build cache (a kernel
# added again after its removal is served from it).
built_lines() { grep -cE '^ *installed ' <<<"$KI_OUT"; }

assert_installed() { # KV
  local file
  file=$(ko "$1" kmshello)
  check "kmshello installed for $1" test -n "$file"
  [ -n "$file" ] || return 0
  check_eq "kmshello on $1: vermagic" "$1" "$(modinfo -F vermagic "$file" | cut -d' ' -f1)"
  check "kmshello on $1: in modules.dep" grep -qE '^updates/dkms/kmshello\.ko(\.[a-z]+)?:' "$R/usr/lib/modules/$1/modules.dep"
  check_eq "kmshello on $1: kmodsync status says installed" installed "$(cell_field "$WORK/state.json" kmshello "$1" state)"
}
assert_absent() { # KV [removed]
  check "no kmshello for $1" test -z "$(ko "$1" kmshello)"
  if [ "${2:-}" = removed ]; then
    # The kernel is going away with its indexes, so `kernel-remove` runs no depmod; this
    # test keeps the kernel's directory, so the depmod stays pending for the next pass.
    check "$1's depmod is left pending for the next pass" \
      jq -e --arg k "$1" '.depmod_pending | index($k) != null' "$R/var/lib/kmodsync/state.json"
  elif [ -f "$R/usr/lib/modules/$1/modules.dep" ]; then
    check "modules.dep of $1 does not name kmshello" test -z \
      "$(grep -E '^updates/dkms/kmshello\.ko' "$R/usr/lib/modules/$1/modules.dep")"
  fi
  check_eq "kmodsync status has no cell for $1" "[]" "$(cells_of "$1")"
}

echo "== kernel-install add $K1, then remove it"
ki "add $K1" add "$K1" "$WORK/vmlinuz-$K1"
assert_calls "add $K1" "sync --kernel $K1 root=$R"
check "add $K1: kmodsync's report is in kernel-install's output" grep -q "installed *kmshello/1.0 for $K1" <<<"$KI_OUT"
check "add $K1: kernel-install made the entry directory (bls layout)" test -d "$BOOT/$MACHINE_ID/$K1"
state
assert_installed "$K1"
assert_absent "$K2"
ki "remove $K1" remove "$K1"
assert_calls "remove $K1" "kernel-remove $K1 root=$R"
state
assert_absent "$K1" removed
check "remove $K1: kernel-install removed the entry directory" test ! -e "$BOOT/$MACHINE_ID/$K1"
check "remove $K1: the kernel's own directory stays (the kernel package owns it)" test -L "$R/usr/lib/modules/$K1/build"

echo "== add for each kernel, one after the other (what systemd 256's add-all does)"
ki "add $K1 (first of two)" add "$K1" "$WORK/vmlinuz-$K1" "$WORK/initrd.img"
assert_calls "add $K1 (first of two)" "sync --kernel $K1 root=$R"
first_builds=$(built_lines)
state
assert_installed "$K1"
assert_absent "$K2"
k1_cell=$(raw_cell "$K1")
k1_log=$(log_mtime "$K1")
k1_file_mtime=$(stat -c %Y "$(ko "$K1" kmshello)" 2>/dev/null)
sleep 1 # a rebuild of K1's cell would show in whole-second mtimes
ki "add $K2 (second of two)" add "$K2" "$WORK/vmlinuz-$K2"
assert_calls "add $K2 (second of two)" "sync --kernel $K2 root=$R"
second_builds=$(built_lines)
state
assert_installed "$K2"
assert_installed "$K1"
check_eq "the two calls worked on one cell each (one pass's work in total)" "1 1" "$first_builds $second_builds"
check "the second call's output does not name $K1" test -z "$(grep -F "$K1" <<<"$KI_OUT")"
check_eq "$K1's recorded cell is unchanged by the call for $K2" "$k1_cell" "$(raw_cell "$K1")"
check_eq "$K1's build log is untouched by the call for $K2" "$k1_log" "$(log_mtime "$K1")"
check_eq "$K1's installed module is untouched by the call for $K2" "$k1_file_mtime" \
  "$(stat -c %Y "$(ko "$K1" kmshello)" 2>/dev/null)"
KI_KMODSYNC=PATH
ki "add $K2 again, KMODSYNC unset (kmodsync from PATH)" add "$K2" "$WORK/vmlinuz-$K2"
KI_KMODSYNC=
assert_calls "add $K2 again, KMODSYNC unset" "sync --kernel $K2 root=$R"
check_eq "add $K2 again: nothing built" 0 "$(built_lines)"

echo "== a module that does not build, and no kmodsync at all"
cp -a "$FIXTURES/kmsbroken-1.0" "$R/usr/src/"
ki "add $K1 with kmsbroken in /usr/src" add "$K1" "$WORK/vmlinuz-$K1"
state
check_eq "kmsbroken on $K1: failed" failed "$(cell_field "$WORK/state.json" kmsbroken "$K1" state)"
check "the failure is in kernel-install's output" grep -q "failed *kmsbroken/1.0 for $K1" <<<"$KI_OUT"
check_eq "kmsbroken is not tried on $K2 by a call for $K1" absent "$(cell_field "$WORK/state.json" kmsbroken "$K2" state)"
assert_installed "$K1"
rm -rf "$R/usr/src/kmsbroken-1.0"
KI_KMODSYNC=$WORK/no-such-kmodsync
ki "add $K2 with KMODSYNC naming nothing" add "$K2" "$WORK/vmlinuz-$K2"
KI_KMODSYNC=
check_eq "the plugin exits 0 when called without a kernel version" 0 \
  "$(KMODSYNC=$WRAPPER KMODSYNC_ROOT=$R "$PLUGIN" add >/dev/null 2>&1; echo $?)"
check_eq "the plugin exits 0 for a command it does not know" 0 \
  "$(KMODSYNC=$WRAPPER KMODSYNC_ROOT=$R "$PLUGIN" inspect "$K1" >/dev/null 2>&1; echo $?)"

echo "== remove both kernels"
ki "remove $K2" remove "$K2"
ki "remove $K1" remove "$K1"
state
assert_absent "$K1" removed
assert_absent "$K2" removed
check_eq "kmodsync status lists no cell at all" 0 "$(jq '.cells | length' "$WORK/state.json")"

check_eq "every pass the plugin started asked for lines, not the live matrix (KMODSYNC_PROGRESS)" "lines" \
  "$(grep -v unset "$CALLS.progress" | sort -u)"

echo "== systemd-analyze verify packaging/kmodsync.service"
check_eq "kmodsync.service: ExecStart runs the installed kmodsync" "/usr/bin/kmodsync sync --kernel %v" \
  "$(sed -n 's/^ExecStart=//p' "$UNIT")"
# verify insists that ExecStart's binary exists: a copy of the unit (same name) runs this
# build's kmodsync instead of /usr/bin/kmodsync.
mkdir -p "$WORK/units"
sed "s|^ExecStart=/usr/bin/kmodsync |ExecStart=$KMODSYNC |" "$UNIT" >"$WORK/units/kmodsync.service"
verify_out=$(systemd-analyze verify "$WORK/units/kmodsync.service" 2>&1)
check_eq "systemd-analyze verify kmodsync.service exits 0" 0 $?
check_eq "systemd-analyze verify kmodsync.service prints nothing" "" "$verify_out"
# The control: verify does read the unit (a misspelt key is reported).
sed 's/^RemainAfterExit=/RemainAfterExitt=/' "$WORK/units/kmodsync.service" >"$WORK/kmodsync.service" &&
  mkdir -p "$WORK/units-bad" && mv "$WORK/kmodsync.service" "$WORK/units-bad/"
check "systemd-analyze verify reports a misspelt key in a copy (the control)" \
  grep -q RemainAfterExitt <<<"$(systemd-analyze verify "$WORK/units-bad/kmodsync.service" 2>&1)"

check_eq "host's /usr/lib/modules, /var/lib/kmodsync, /boot unchanged" "$HOST_BEFORE" "$(host_snapshot)"
echo "  time  total: $((SECONDS - SUITE_START)) s"
finish
