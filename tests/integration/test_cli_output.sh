#!/usr/bin/env bash
# What people and scripts read from kmodsync: the live progress matrix on a terminal, one
# line per finished cell without one, `--json` on every command, `kmodsync log` and
# `kmodsync doctor`. Real kernel headers (6.1.0-55 and 6.12.107), the kmshello (builds
# everywhere), kmsbroken (a compile error) and kmsexcl (BUILD_EXCLUSIVE_KERNEL 6.12 only)
# fixtures, and one kernel directory without headers.
#
# The terminal is a real pseudo-terminal: util-linux's `script` runs kmodsync on one and
# records every byte it wrote, escape sequences included.
source "$(dirname "$0")/lib.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
K3=6.99.0-noheaders
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures

require_tools script jq modinfo make gcc
require_headers "$K1" "$K2"

R=$WORK/root
make_root "$R" "$K1" "$K2"
mkdir -p "$R/usr/lib/modules/$K3"
touch "$R/usr/lib/modules/$K3/modules.order"
cp -a "$FIXTURES/kmshello-1.0" "$FIXTURES/kmsbroken-1.0" "$FIXTURES/kmsexcl-1.0" "$R/usr/src/"
printf 'ID=debian\nVERSION_ID=12\n' >"$R/etc/os-release"

# on_tty FILE COMMAND...: runs COMMAND on a pseudo-terminal of 100x40, its bytes in FILE.
on_tty() {
  local out=$1
  shift
  local line
  printf -v line '%q ' "$@"
  TERM=xterm NO_COLOR= script -qfec "stty cols 100 rows 40; $line" "$out" >/dev/null 2>&1
  sed -n 's/.*COMMAND_EXIT_CODE="\([0-9]*\)".*/\1/p' "$out" | tail -1
}

# --- the live matrix on a terminal ---------------------------------------------------
echo "== sync on a terminal"
rc=$(on_tty "$WORK/tty1.out" "$KMODSYNC" --root "$R" sync -j 2)
check_eq "sync on a terminal exits 1 (kmsbroken fails)" 1 "$rc"
tty_text=$(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$WORK/tty1.out" | tr -d '\r')
check "the matrix is redrawn in place (cursor up, clear to end)" grep -qP '\x1b\[\d+A\x1b\[J' "$WORK/tty1.out"
redraws=$(grep -oP '\x1b\[\d+A\x1b\[J' "$WORK/tty1.out" | wc -l)
check "redrawn several times, not once per byte ($redraws drawings)" test "$redraws" -ge 2 -a "$redraws" -le 400
check "its header names both kernels" grep -qE "^ +$K1 +${K2//+/\\+}" <<<"$tty_text"
check "a building cell shows its elapsed time" grep -qE 'kmshello/1\.0 .*build [0-9]+s' <<<"$tty_text"
check "queued cells are shown as queued" grep -qE 'queued' <<<"$tty_text"
check "cells are coloured (failed in red)" grep -qF $'\x1b[31mFAILED' "$WORK/tty1.out"
final=$(awk '/\x1b\[[0-9]+A\x1b\[J/{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$WORK/tty1.out" |
  sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | tr -d '\r')
check "the final matrix: kmshello installed on both kernels with headers" \
  grep -qE "kmshello/1\.0 +installed +installed +skipped" <<<"$final"
check "the final matrix: kmsbroken failed on both" grep -qE "kmsbroken/1\.0 +FAILED +FAILED" <<<"$final"
check "the final matrix: kmsexcl skipped on $K1, installed on $K2" grep -qE "kmsexcl/1\.0 +skipped +installed" <<<"$final"
check "the final matrix: the kernel without headers is skipped" grep -qE "kmshello/1\.0 .* skipped *$" <<<"$final"
check "the failure's first error follows, with file and line, relative to the build directory" \
  grep -qE "^ +first error: broken\.c:[0-9]+:[0-9]+: error: " <<<"$final"
check "and its log" grep -qE "^ +log: $R/var/lib/kmodsync/log/$K1/kmsbroken-1\.0\.log" <<<"$final"
check "the summary ends it" grep -qE "^kmodsync: 9 cells: 2 failed, 3 installed, 4 skipped" <<<"$final"
# The matrix is everything before each drawing's "[Ns] ..." line; the failures' details
# after the final one may be as long as their paths.
check "no line of the matrix is wider than the terminal" \
  awk '/^Script / { next } /^  \[[0-9]+(s|m[0-9]+s)\]/ { if (length($0) > 100) exit 1; next } /^  (failed|  ) / { exit 0 } { if (length($0) > 100) exit 1 }' <<<"$tty_text"

echo "== sync --lines on a terminal, and sync on a pipe"
rm -rf "$R/var/lib/kmodsync/cache" "$R/var/lib/kmodsync/state.json"
rc=$(on_tty "$WORK/tty2.out" "$KMODSYNC" --root "$R" sync --lines)
check_eq "sync --lines exits 1" 1 "$rc"
check "--lines draws no matrix" bash -c "! grep -qP '\x1b\[\d+A' '$WORK/tty2.out'"
rm -rf "$R/var/lib/kmodsync/cache" "$R/var/lib/kmodsync/state.json"
rc=$(KMODSYNC_PROGRESS=lines on_tty "$WORK/tty3.out" "$KMODSYNC" --root "$R" sync)
check_eq "sync with KMODSYNC_PROGRESS=lines (what the triggers set) exits 1" 1 "$rc"
check "KMODSYNC_PROGRESS=lines draws no matrix on a terminal" bash -c "! grep -qP '\x1b\[\d+A' '$WORK/tty3.out'"
check "and prints the cells' lines" grep -qE '^  installed +kmshello/1\.0 for ' "$WORK/tty3.out"
"$KMODSYNC" --root "$R" sync --retry >"$WORK/pipe.out" 2>"$WORK/pipe.err"
check_eq "sync on a pipe exits 1" 1 $?
check "no escape sequence on a pipe" bash -c "! grep -qP '\x1b' '$WORK/pipe.out'"
cell_lines=$(grep -cE '^  (installed|up-to-date|skipped|failed) ' "$WORK/pipe.out")
check_eq "one line per finished cell (9 cells)" 9 "$cell_lines"
check "no line for a cell that starts" bash -c "! grep -qE '^  building ' '$WORK/pipe.out'"
check "the remembered failure's line names it" grep -qE "^  failed +kmsbroken/1\.0 for $K1: " "$WORK/pipe.out"

# --- kmodsync log -----------------------------------------------------------------------
echo "== kmodsync log"
"$KMODSYNC" --root "$R" log kmsbroken/1.0 "$K1" >"$WORK/log.out"
check_eq "log NAME/VERSION KV exits 0" 0 $?
check "it prints the build log: the compiler's error" grep -qE "broken\.c:[0-9]+:[0-9]+: error: " "$WORK/log.out"
check "it prints the build log: kmodsync's header" grep -qF "# kmodsync build log for kmsbroken/1.0 on kernel $K1" "$WORK/log.out"
check_eq "log --path names the file" "$R/var/lib/kmodsync/log/$K1/kmsbroken-1.0.log" \
  "$("$KMODSYNC" --root "$R" log kmsbroken "$K1" --path)"
cmp -s "$WORK/log.out" "$R/var/lib/kmodsync/log/$K1/kmsbroken-1.0.log"
check_eq "the text is the file's, byte for byte" 0 $?
"$KMODSYNC" --root "$R" log kmsbroken "$K2" --json >"$WORK/log.json"
check_eq "log --json: the cell" "kmsbroken 1.0 $K2 failed" \
  "$(jq -r '"\(.module) \(.version) \(.kernel) \(.state)"' "$WORK/log.json")"
check "log --json: the first error" jq -e '.first_error | test("^broken\\.c:[0-9]+:[0-9]+: error: ")' "$WORK/log.json"
check "log --json: the text" jq -e '.text | contains("kmsbroken_no_such_symbol")' "$WORK/log.json"
"$KMODSYNC" --root "$R" log kmsbroken >/dev/null 2>"$WORK/log.err"
check_eq "log without a kernel, with logs for two, exits 2" 2 $?
check "and lists the kernels" grep -qF "$K1, $K2" "$WORK/log.err"
"$KMODSYNC" --root "$R" log nosuch "$K1" >/dev/null 2>"$WORK/log.err"
check_eq "log of an unknown module exits 2" 2 $?
check "and says so" grep -qF "no cell of nosuch is recorded" "$WORK/log.err"
"$KMODSYNC" --root "$R" log kmshello "$K3" >/dev/null 2>"$WORK/log.err"
check_eq "log of a cell without a log (skipped: no headers) exits 2" 2 $?
check "and says why" grep -qE "kmshello/1\.0 on $K3 has no build log \(skipped: no headers" "$WORK/log.err"

# --- kmodsync doctor --------------------------------------------------------------------
echo "== kmodsync doctor"
"$KMODSYNC" --root "$R" doctor >"$WORK/doctor.out" 2>&1
check_eq "doctor exits 1 (a failed cell, a kernel without headers)" 1 $?
check "doctor: the kernel without headers, and Debian's package for them" \
  grep -qF "fix: apt-get install linux-headers-$K3" "$WORK/doctor.out"
check "doctor: the compiler the kernel was built with is there" \
  grep -qE "ok +compiler: .*gcc-12 .*as the kernel was built with" "$WORK/doctor.out"
check "doctor: kmsbroken's known failure, with its first error" \
  grep -qE "first error: broken\.c:[0-9]+:[0-9]+: error: " "$WORK/doctor.out"
check "doctor: points at kmodsync log" grep -qF "kmodsync log kmsbroken/1.0 $K1" "$WORK/doctor.out"
check "doctor: kmsexcl is skipped on $K1 for BUILD_EXCLUSIVE_KERNEL" \
  grep -qE "skipped +kmsexcl/1\.0: BUILD_EXCLUSIVE_KERNEL" "$WORK/doctor.out"
check "doctor: no signing key is a warning with the fix" grep -qF "fix: kmodsync keygen" "$WORK/doctor.out"
"$KMODSYNC" --root "$R" doctor --json >"$WORK/doctor.json"
check "doctor --json: ok is false" jq -e '.ok == false' "$WORK/doctor.json"
check_eq "doctor --json: the headers problem of $K3" "problem" \
  "$(jq -r --arg k "$K3" '.kernels[] | select(.kernel == $k) | .findings[] | select(.topic == "headers") | .severity' "$WORK/doctor.json")"
check_eq "doctor --json: kmsbroken on $K2 failed, remembered" "failed true" \
  "$(jq -r --arg k "$K2" '.kernels[] | select(.kernel == $k) | .cells[] | select(.module == "kmsbroken") | "\(.status) \(.remembered)"' "$WORK/doctor.json")"
printf 'ID=fedora\n' >"$R/etc/os-release"
check "doctor on Fedora names kernel-devel" bash -c \
  "'$KMODSYNC' --root '$R' doctor -k '$K3' | grep -qF 'fix: dnf install kernel-devel-$K3'"
printf 'ID=arch\n' >"$R/etc/os-release"
echo linux-lts >"$R/usr/lib/modules/$K3/pkgbase"
check "doctor on Arch names the kernel's own headers package (pkgbase)" bash -c \
  "'$KMODSYNC' --root '$R' doctor -k '$K3' | grep -qF 'fix: pacman -S linux-lts-headers'"
printf 'ID=debian\n' >"$R/etc/os-release"
# A kernel built with a compiler this machine lacks (a kbuild tree of its own in the root).
K4=6.98.0-othercc
mkdir -p "$R/usr/src/linux-headers-$K4" "$R/usr/lib/modules/$K4"
echo '# kbuild' >"$R/usr/src/linux-headers-$K4/Makefile"
printf 'CONFIG_CC_VERSION_TEXT="gcc-99 (Debian 99.1.0-1) 99.1.0"\nCONFIG_MODULES=y\n' >"$R/usr/src/linux-headers-$K4/.config"
ln -s "/usr/src/linux-headers-$K4" "$R/usr/lib/modules/$K4/build"
"$KMODSYNC" --root "$R" doctor -k "$K4" >"$WORK/doctor-cc.out" 2>&1
check_eq "doctor for a kernel whose compiler is missing exits 1" 1 $?
check "and names the compiler and the package" bash -c \
  "grep -qE 'problem +compiler: .*gcc-99 .*not installed' '$WORK/doctor-cc.out' && grep -qF 'fix: apt-get install gcc-99' '$WORK/doctor-cc.out'"
rm -rf "$R/usr/src/linux-headers-$K4" "$R/usr/lib/modules/$K4"
# A healthy root: no kernel without headers, kmsbroken gone, a key.
rm -rf "$R/usr/lib/modules/$K3" "$R/usr/src/kmsbroken-1.0"
"$KMODSYNC" --root "$R" sync >/dev/null 2>&1
"$KMODSYNC" --root "$R" keygen >/dev/null
"$KMODSYNC" --root "$R" doctor -k "$K1" >"$WORK/doctor2.out" 2>&1
check_eq "doctor on a healthy kernel exits 0" 0 $?
check "and says nothing is wrong" grep -qF "kmodsync doctor: nothing is wrong" "$WORK/doctor2.out"
check "and names the signing key" grep -qE "ok +signing: modules are signed with $R/var/lib/kmodsync/signing.key" "$WORK/doctor2.out"
chmod 644 "$R/var/lib/kmodsync/signing.key"
"$KMODSYNC" --root "$R" doctor -k "$K1" >"$WORK/doctor3.out" 2>&1
check_eq "doctor with a world-readable key exits 1" 1 $?
check "and names the key and its mode" grep -qE "problem +signing: .*signing.key.*(644|0644|mode)" "$WORK/doctor3.out"
chmod 600 "$R/var/lib/kmodsync/signing.key"
"$KMODSYNC" --root "$R" doctor -k 9.9.9 >/dev/null 2>&1
check_eq "doctor for an unknown kernel exits 1" 1 $?

# --- --json on every command ------------------------------------------------------------
echo "== --json everywhere"
json_ok() { # DESCRIPTION EXPECTED-RC JQ-FILTER COMMAND...
  local description=$1 expected=$2 filter=$3
  shift 3
  local out rc
  out=$("$@" 2>/dev/null)
  rc=$?
  check_eq "$description: exit $expected" "$expected" "$rc"
  check "$description: JSON ($filter)" jq -e "$filter" <<<"$out"
}
json_ok "sync --json" 0 '.failed == false and (.cells | length) == 4' "$KMODSYNC" --root "$R" sync --json
json_ok "status --json" 0 '(.cells | length) == 4' "$KMODSYNC" --root "$R" status --json
json_ok "cache stats --json" 0 '.ok and .entries >= 2 and .limit > 0' "$KMODSYNC" --root "$R" cache --json
json_ok "uninstall --json" 0 ".ok and (.kernels | sort) == [\"$K1\", \"$K2\"]" "$KMODSYNC" --root "$R" uninstall kmshello/1.0 --json
json_ok "remove --json" 0 '.ok and .module == "kmshello/1.0"' "$KMODSYNC" --root "$R" remove kmshello/1.0 --json
json_ok "remove --json of nothing" 2 '(.ok | not) and (.error | test("not known"))' "$KMODSYNC" --root "$R" remove nope/1 --json
json_ok "add --json" 0 '.ok and .module == "kmshello" and .version == "1.0"' "$KMODSYNC" --root "$R" add /usr/src/kmshello-1.0 --json
json_ok "kernel-remove --json" 0 ".ok and .kernel == \"$K2\"" "$KMODSYNC" --root "$R" kernel-remove "$K2" --json
json_ok "keygen --json when a key exists" 2 '(.ok | not) and (.error | test("exist already"))' "$KMODSYNC" --root "$R" keygen --json
json_ok "cache clear --json" 0 '.ok' "$KMODSYNC" --root "$R" cache clear --json
json_ok "doctor --json" 0 '.ok' "$KMODSYNC" --root "$R" doctor -k "$K1" --json

finish
