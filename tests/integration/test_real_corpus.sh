#!/usr/bin/env bash
# One pass of real Debian module sources over real Debian kernel headers, asserted cell by
# cell; then a second pass that must build nothing, scope, dry run, remove, add, a source
# that disappears and a broken dkms.conf.
source "$(dirname "$0")/lib.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
require_tools jq make gcc bash depmod modinfo apt-get dpkg-deb strip
require_headers "$K1" "$K2"
fetch_sources v4l2loopback-dkms acpi-call-dkms vpoll-dkms openrazer-driver-dkms lime-forensics-dkms

R=$WORK/root
make_root "$R" "$K1" "$K2"
add_sources "$R" v4l2loopback-dkms acpi-call-dkms vpoll-dkms openrazer-driver-dkms lime-forensics-dkms
host_updates_before=$(ls -d /lib/modules/$K1/updates /var/lib/kmodsync 2>/dev/null)

echo "== first pass"
"$KMODSYNC" --root "$R" sync -j 2 --json >"$WORK/pass1.json"
check_eq "first pass exits 1 (some cells fail)" 1 $?

# The kernel's own compression decides the suffix: none for 6.1.0-55, xz for 6.12.
suffix_of() { if [ "$1" = "$K2" ]; then echo .ko.xz; else echo .ko; fi; }
installed_ko() { echo "$R/usr/lib/modules/$1/updates/dkms/$2$(suffix_of "$1")"; }
for kv in "$K1" "$K2"; do
  check_eq "acpi-call installed on $kv" installed "$(cell_field "$WORK/pass1.json" acpi-call "$kv" status)"
  ko=$(installed_ko "$kv" acpi_call)
  check "acpi_call.ko is in updates/dkms of $kv" test -f "$ko"
  check_eq "acpi_call.ko vermagic is $kv" "$kv" "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)"
  check_eq "acpi_call.ko module name" acpi_call "$(modinfo -F name "$ko")"
  check "depmod indexed acpi_call$(suffix_of "$kv") for $kv" \
    grep -q "^updates/dkms/acpi_call$(suffix_of "$kv"):" "$R/usr/lib/modules/$kv/modules.dep"
  check_eq "lime-forensics skipped on $kv" skipped "$(cell_field "$WORK/pass1.json" lime-forensics "$kv" status)"
  check "lime-forensics skip reason names AUTOINSTALL on $kv" \
    grep -q AUTOINSTALL <<<"$(cell_field "$WORK/pass1.json" lime-forensics "$kv" reason)"
  check "no lime.ko on $kv" test ! -e "$(installed_ko "$kv" lime)"
done
for module in vpoll v4l2loopback; do
  check_eq "$module installed on $K1" installed "$(cell_field "$WORK/pass1.json" $module "$K1" status)"
  ko=$(installed_ko "$K1" $module)
  check_eq "$module.ko vermagic is $K1" "$K1" "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)"
  check_eq "$module.ko module name" "$module" "$(modinfo -F name "$ko")"
  check "$module.ko was stripped of debug info (STRIP default)" bash -c "! readelf -S '$ko' | grep -q debug_info"
done
# Real failures of these versions on the 6.12 headers (strlcpy, class_create changed).
for module in vpoll v4l2loopback; do
  check_eq "$module fails on $K2" failed "$(cell_field "$WORK/pass1.json" $module "$K2" status)"
done
first_error=$(cell_field "$WORK/pass1.json" openrazer-driver "$K1" first_error)
log=$(cell_field "$WORK/pass1.json" openrazer-driver "$K1" log)
check_eq "openrazer-driver fails on $K1" failed "$(cell_field "$WORK/pass1.json" openrazer-driver "$K1" status)"
check "openrazer's first error is a compiler error" grep -q ': error: ' <<<"$first_error"
check "openrazer's log is inside the root" test "${log#"$R"/}" != "$log"
check "openrazer's log contains the first error" grep -qF "$first_error" "$log"
for name in razerkbd razermouse razerkraken razeraccessory; do
  check "no $name.ko installed on $K1" test ! -e "$(installed_ko "$K1" $name)"
done
check_eq "nothing written on the host" "$host_updates_before" "$(ls -d /lib/modules/$K1/updates /var/lib/kmodsync 2>/dev/null)"
check "no temporary files left in updates/dkms" test -z "$(find "$R/usr/lib/modules" -name '*.kmodsync-*')"
check "6.12's module is xz-compressed with a CRC32 check, as its kernel's are" \
  bash -c "xz --robot --list '$(installed_ko "$K2" acpi_call)' | grep -q CRC32"
check "no key configured, so nothing is signed" bash -c "! modinfo -F signer '$(installed_ko "$K1" vpoll)' | grep -q ."

echo "== second pass: nothing changed"
stamp_before=$(stat -c %Y "$(installed_ko "$K1" vpoll)" "$log")
start=$(date +%s%N)
"$KMODSYNC" --root "$R" sync -j 2 --json >"$WORK/pass2.json"
rc=$?
echo "  (second pass took $(( ($(date +%s%N) - start) / 1000000 )) ms)"
check_eq "second pass still reports the failures (exit 1)" 1 $rc
check_eq "second pass installs nothing" 0 "$(jq '[.cells[] | select(.status == "installed")] | length' "$WORK/pass2.json")"
check_eq "second pass: 4 cells up to date" 4 "$(jq '[.cells[] | select(.status == "up-to-date")] | length' "$WORK/pass2.json")"
check_eq "second pass: every failure is remembered, not retried" \
  "$(jq '[.cells[] | select(.status == "failed")] | length' "$WORK/pass2.json")" \
  "$(jq '[.cells[] | select(.status == "failed" and .remembered)] | length' "$WORK/pass2.json")"
check_eq "second pass touched no module and no log" "$stamp_before" "$(stat -c %Y "$(installed_ko "$K1" vpoll)" "$log")"

echo "== status"
"$KMODSYNC" --root "$R" status --json >"$WORK/status.json"
check_eq "status lists 10 cells" 10 "$(jq '.cells | length' "$WORK/status.json")"
check_eq "status: vpoll on $K1 installed" installed "$(cell_field "$WORK/status.json" vpoll "$K1" state)"
check "status text names every module" bash -c "'$KMODSYNC' --root '$R' status | grep -q 'openrazer-driver/3.5.1 .*failed'"

echo "== --retry rebuilds a known failure"
"$KMODSYNC" --root "$R" sync --retry -k "$K1" -m openrazer-driver --json >"$WORK/retry.json"
check_eq "--retry rebuilt openrazer (still failing, not remembered)" false \
  "$(cell_field "$WORK/retry.json" openrazer-driver "$K1" remembered)"

echo "== dry run and scope on a fresh root"
D=$WORK/dry
make_root "$D" "$K1" "$K2"
add_sources "$D" vpoll-dkms acpi-call-dkms
"$KMODSYNC" --root "$D" sync --dry-run --json >"$WORK/dry.json"
check_eq "dry run exits 0" 0 $?
check_eq "dry run plans vpoll on $K1" would-build "$(cell_field "$WORK/dry.json" vpoll "$K1" status)"
check "dry run writes no state" test ! -e "$D/var/lib/kmodsync"
check "dry run installs nothing" test -z "$(find "$D/usr/lib/modules" -name '*.ko')"
"$KMODSYNC" --root "$D" sync -k "$K1" -m vpoll --json >"$WORK/scoped.json"
check_eq "scoped pass exits 0" 0 $?
check_eq "scoped pass covers exactly one cell" 1 "$(jq '.cells | length' "$WORK/scoped.json")"
check "scoped pass installed vpoll on $K1" test -f "$D/usr/lib/modules/$K1/updates/dkms/vpoll.ko"
check "scoped pass left $K2 alone" test ! -e "$D/usr/lib/modules/$K2/updates"
check "scoped pass did not build acpi-call" test ! -e "$D/usr/lib/modules/$K1/updates/dkms/acpi_call.ko"

echo "== remove and add"
"$KMODSYNC" --root "$R" remove vpoll/0.1 >/dev/null
check_eq "remove exits 0" 0 $?
check "vpoll.ko removed from $K1" test ! -e "$(installed_ko "$K1" vpoll)"
check "depmod forgot vpoll" bash -c "! grep -q vpoll '$R/usr/lib/modules/$K1/modules.dep'"
"$KMODSYNC" --root "$R" sync --json >"$WORK/after-remove.json"
check_eq "a removed module is not rebuilt" absent "$(cell_field "$WORK/after-remove.json" vpoll "$K1" status)"
"$KMODSYNC" --root "$R" add /usr/src/vpoll-0.1 >/dev/null
check_eq "add exits 0" 0 $?
"$KMODSYNC" --root "$R" sync --json >"$WORK/after-add.json"
check_eq "an added module is built again" installed "$(cell_field "$WORK/after-add.json" vpoll "$K1" status)"

echo "== a module source disappears"
rm -rf "$R/usr/src/acpi-call-1.2.2"
"$KMODSYNC" --root "$R" sync --json >"$WORK/gone.json"
for kv in "$K1" "$K2"; do
  check_eq "acpi-call reported removed on $kv" removed "$(cell_field "$WORK/gone.json" acpi-call "$kv" status)"
  check "acpi_call.ko uninstalled from $kv" test ! -e "$(installed_ko "$kv" acpi_call)"
done
check "status forgot acpi-call" bash -c "! '$KMODSYNC' --root '$R' status | grep -q acpi-call"

echo "== a broken dkms.conf"
mkdir -p "$R/usr/src/broken-1.0"
printf 'PACKAGE_NAME=broken\nPACKAGE_VERSION=1.0\nif then fi\n' >"$R/usr/src/broken-1.0/dkms.conf"
"$KMODSYNC" --root "$R" sync --json >"$WORK/broken.json"
reason=$(cell_field "$WORK/broken.json" broken "$K1" reason)
check_eq "the broken source is a failed cell" failed "$(cell_field "$WORK/broken.json" broken "$K1" status)"
check "its error names the file" grep -qF "$R/usr/src/broken-1.0/dkms.conf" <<<"$reason"
check "its error names the line" grep -q 'line 3' <<<"$reason"
check_eq "other cells are unaffected" up-to-date "$(cell_field "$WORK/broken.json" vpoll "$K1" status)"

finish
