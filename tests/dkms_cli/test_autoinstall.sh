#!/usr/bin/env bash
# `dkms autoinstall -k KV`: builds and installs, for KV, the newest version of every added
# module whose dkms.conf sets AUTOINSTALL, unless some version of it is installed there.
#   0   nothing failed (also when there was nothing to do)
#   11  some module failed to build or install; the others are installed all the same
# DKMS 3.0.10 quirk, noted and deliberately not asserted: a module whose BUILD_EXCLUSIVE_*
# excludes KV makes autoinstall exit 11 too (its build's 77 counts as a failure), so a
# kernel's postinst hook reports a failure for a module that was merely skipped. A script
# cannot depend on that; the test asserts only that such a module is not built for KV.
# Another DKMS 3.0.10 bug, avoided rather than asserted: with two versions added and the
# newer one installed on KV, a second autoinstall picks the older one, marks it installed
# on KV (`... installed (WARNING! Diff between built and installed module!)`, the newer
# file staying in place since its version is higher) and demotes the newer one to
# `built`. So the "nothing to do" run below happens after the older version is removed.
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0
clone_source kmshello-1.0 kmshello 2.0
clone_source kmshello-1.0 kmsmanual 1.0
sed -i '/^AUTOINSTALL/d' "$T/usr/src/kmsmanual-1.0/dkms.conf"
put_source kmsexcl-1.0
put_source kmsbroken-1.0

run add kmshello/1.0
run add kmshello/2.0
run add kmsmanual/1.0
check_status "three modules added" "$(line_added kmshello 1.0; line_added kmshello 2.0; line_added kmsmanual 1.0)"

echo "== autoinstall -k $K1"
run autoinstall -k "$K1"
check_rc "autoinstall -k $K1" 0
check_status "the newest kmshello is installed, not 1.0, not the module without AUTOINSTALL" "$(
  line_added kmshello 1.0; line_installed kmshello 2.0 "$K1"; line_added kmsmanual 1.0)"
check "INSTALLTREE/$K1/updates/dkms/kmshello.ko" installed_module "$K1" kmshello
check_eq "it is version 2.0" 2.0 "$(modinfo -F version "$(installed_module "$K1" kmshello)" 2>/dev/null)"
check "depmod lists it" depmod_lists "$K1" kmshello
check_not "kmsmanual is not installed" installed_module "$K1" kmsmanual
before=$(stamp "$(installed_module "$K1" kmshello)")
run remove kmshello/1.0 --all
check_rc "remove kmshello/1.0 (never built)" 0

echo "== autoinstall again: nothing to do"
run autoinstall -k "$K1"
check_rc "autoinstall -k $K1 again" 0
check_eq "the installed module is left alone" "$before" "$(stamp "$(installed_module "$K1" kmshello)")"
check_status "status unchanged" "$(line_installed kmshello 2.0 "$K1"; line_added kmsmanual 1.0)"

echo "== autoinstall --kernelver $K2, with a BUILD_EXCLUSIVE module for 6.12 only"
run add kmsexcl/1.0
run autoinstall --kernelver "$K2"
check_rc "autoinstall --kernelver $K2" 0
check_status "kmshello 2.0 installed on $K2" "$(line_installed kmshello 2.0 "$K2")" -k "$K2" -m kmshello
check_status "kmsexcl installed on $K2" "$(line_installed kmsexcl 1.0 "$K2")" -k "$K2" -m kmsexcl
check "INSTALLTREE/$K2/updates/dkms/kmsexcl.ko(.xz)" installed_module "$K2" kmsexcl
check "INSTALLTREE/$K2/updates/dkms/kmshello.ko(.xz)" installed_module "$K2" kmshello

echo "== autoinstall -k $K1: kmsexcl excludes it"
run autoinstall -k "$K1"
# Exit status not asserted: DKMS 3.0.10 says 11 here (see the top).
check_status "kmsexcl is not built for $K1" "$(line_added kmsexcl 1.0)" -m kmsexcl -k "$K1"
check_not "nor installed" installed_module "$K1" kmsexcl
check "kmshello stays installed on $K1" installed_module "$K1" kmshello

echo "== autoinstall -k $K2 with a module that does not compile"
run add kmsbroken/1.0
run autoinstall -k "$K2"
check_rc "autoinstall with a build failure" 11
check_status "kmsbroken stays added" "$(line_added kmsbroken 1.0)" -m kmsbroken
check "kmshello stays installed on $K2" installed_module "$K2" kmshello
check "kmsexcl stays installed on $K2" installed_module "$K2" kmsexcl

check_status "final status" "$(
  line_added kmsbroken 1.0
  line_installed kmsexcl 1.0 "$K2"
  line_installed kmshello 2.0 "$K1"
  line_installed kmshello 2.0 "$K2"
  line_added kmsmanual 1.0
)"

finish
