#!/usr/bin/env bash
# Switching from DKMS loses nothing and rebuilds nothing: real DKMS 3.0.10 adds, builds
# and installs real module sources in a throwaway root (its tree at ROOT/var/lib/dkms, the
# modules in ROOT/usr/lib/modules), then kmodsync takes over that root. What DKMS
# installed is adopted as it is (same files, no compiler run), what it only added or built
# is kmodsync's to build, and `dkms status` reads the same before and after.
source "$(dirname "$0")/lib.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
require_tools dkms jq make gcc depmod modinfo apt-get dpkg-deb sha256sum
require_headers "$K1" "$K2"
fetch_sources acpi-call-dkms vpoll-dkms lime-forensics-dkms

R=$(readlink -f "$WORK")/root
make_root "$R" "$K1" "$K2"
cp /etc/os-release "$R/etc/os-release" # DKMS reads the host's; kmodsync the root's: the same here
add_sources "$R" acpi-call-dkms vpoll-dkms lime-forensics-dkms
mkdir -p "$WORK/bin" "$WORK/tmp"
printf '#!/bin/sh\nexec %s -b %s "$@"\n' "$(command -v depmod)" "$R" >"$WORK/bin/depmod"
chmod +x "$WORK/bin/depmod"
real_dkms() {
  env PATH="$WORK/bin:$PATH" TMPDIR="$WORK/tmp" sign_file="$WORK/no-sign-file" \
    mok_signing_key="$WORK/mok.key" mok_certificate="$WORK/mok.pub" \
    dkms --dkmstree "$R/var/lib/dkms" --sourcetree "$R/usr/src" --installtree "$R/usr/lib/modules" "$@"
}
ours() { "$KMODSYNC" dkms --root "$R" "$@"; }

# --- DKMS's state: acpi-call installed on K1 and only built on K2, vpoll installed on K1
# (it does not compile for K2, with either tool), lime-forensics only added.
mkdir -p "$R/var/lib/dkms"
for source in acpi-call/1.2.2 vpoll/0.1 lime-forensics/1.9.1-5; do
  real_dkms add "$source" >>"$WORK/dkms.log" 2>&1
done
real_dkms install acpi-call/1.2.2 -k "$K1" --kernelsourcedir "/usr/src/linux-headers-$K1" >>"$WORK/dkms.log" 2>&1
real_dkms build acpi-call/1.2.2 -k "$K2" --kernelsourcedir "/usr/src/linux-headers-$K2" >>"$WORK/dkms.log" 2>&1
real_dkms install vpoll/0.1 -k "$K1" --kernelsourcedir "/usr/src/linux-headers-$K1" >>"$WORK/dkms.log" 2>&1
real_dkms status 2>/dev/null | sort >"$WORK/dkms-status.txt"
check_eq "DKMS set the stage (status lines)" 4 "$(wc -l <"$WORK/dkms-status.txt")"
modules=$(find "$R/usr/lib/modules" -path '*/updates/dkms/*.ko*' | sort)
check_eq "DKMS installed two modules" 2 "$(echo "$modules" | grep -c .)"
sha256sum $modules >"$WORK/before.sha256"

# --- a twin of the root: `dkms uninstall` of a cell DKMS installed, before any pass took
# it over, removes DKMS's file (it would otherwise be left, and adopted again).
R2=$(readlink -f "$WORK")/root2
cp -a "$R" "$R2"
"$KMODSYNC" dkms --root "$R2" uninstall acpi-call/1.2.2 -k "$K1" >"$WORK/uninstall.log" 2>&1
check_eq "dkms uninstall of a DKMS-installed cell exits 0" 0 $?
check_eq "its module file is gone" "" "$(find "$R2/usr/lib/modules/$K1" -name 'acpi_call.ko*')"
check "modules.dep of $K1 no longer names it" bash -c "! grep -q acpi_call '$R2/usr/lib/modules/$K1/modules.dep'"
check "dkms status no longer says installed" bash -c "! '$KMODSYNC' dkms --root '$R2' status | grep -q 'acpi-call/1.2.2, $K1, x86_64: installed'"
check_eq "the twin's vpoll (not asked for) is untouched" 1 "$(find "$R2/usr/lib/modules/$K1" -name 'vpoll.ko*' | wc -l)"
rm -rf "$R2"

# --- kmodsync reads the same status straight away (nothing imported on disk yet), but for
# DKMS's built-only cell, which is kmodsync's to build.
ours status | sort >"$WORK/ours-status-first.txt"
check "kmodsync's dkms status lists DKMS's installed and added modules" \
  diff "$WORK/ours-status-first.txt" <(grep -v ': built' "$WORK/dkms-status.txt")

# --- the first pass adopts what DKMS installed and compiles only what DKMS did not install.
"$KMODSYNC" --root "$R" sync --json >"$WORK/sync.json"
cell() { cell_field "$WORK/sync.json" "$1" "$2" "$3"; }
check_eq "acpi-call on $K1: adopted, not rebuilt" "up-to-date/installed by DKMS; adopted" \
  "$(cell acpi-call "$K1" status)/$(cell acpi-call "$K1" reason)"
check_eq "vpoll on $K1: adopted" "up-to-date/installed by DKMS; adopted" \
  "$(cell vpoll "$K1" status)/$(cell vpoll "$K1" reason)"
check_eq "acpi-call on $K2 (only built by DKMS): built and installed by kmodsync" "installed" \
  "$(cell acpi-call "$K2" status)"
check_eq "vpoll on $K2: fails to compile, as with DKMS" "failed" "$(cell vpoll "$K2" status)"
check_eq "lime-forensics (no AUTOINSTALL) stays skipped as with DKMS" "skipped" "$(cell lime-forensics "$K1" status)"
check "the adopted module files are untouched" sha256sum --quiet -c "$WORK/before.sha256"
check_eq "no build log for an adopted cell" "absent" \
  "$(ls "$R/var/lib/kmodsync/log/$K1/acpi-call-1.2.2.log" 2>/dev/null || echo absent)"
check_eq "the DKMS tree is left as it was" "$(md5sum <"$WORK/dkms-status.txt")" \
  "$(real_dkms status 2>/dev/null | sort | md5sum)"

# --- a second pass has nothing to do; status now says installed for acpi-call on K2 too.
"$KMODSYNC" --root "$R" sync --json >"$WORK/sync2.json"
check_eq "second pass: nothing built, the failure is remembered" "0" \
  "$(jq '[.cells[] | select(.status != "up-to-date" and .status != "skipped" and .remembered != true)] | length' "$WORK/sync2.json")"
check "dkms status: acpi-call installed on $K2" grep -q "^acpi-call/1.2.2, $K2, x86_64: installed" <(ours status)
check "dkms status: lime-forensics added" grep -q "^lime-forensics/1.9.1-5: added" <(ours status)

# --- the adopted files are kmodsync's now: removing the module takes them away.
ours remove acpi-call/1.2.2 --all >"$WORK/remove.log" 2>&1
check_eq "dkms remove --all exits 0" 0 $?
check_eq "acpi_call is gone from both kernels" "" "$(find "$R/usr/lib/modules" -name 'acpi_call.ko*')"
check "modules.dep of $K1 no longer names acpi_call" bash -c "! grep -q acpi_call '$R/usr/lib/modules/$K1/modules.dep'"
check "dkms status no longer lists acpi-call" bash -c "! '$KMODSYNC' dkms --root '$R' status | grep -q acpi-call"
check_eq "nothing was written on the host's module tree" "" "$(find /usr/lib/modules -newer "$WORK/dkms.log" -name 'acpi_call*' 2>/dev/null)"

finish
