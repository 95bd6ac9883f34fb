#!/usr/bin/env bash
# `dkms install NAME/VERSION -k KV`: builds first when needed (and adds first when the
# source is in the source tree), copies the module to INSTALLTREE/KV/updates/dkms/ (Debian
# overrides DEST_MODULE_LOCATION so) and runs depmod for KV.
#   0   installed (`status`: `NAME/VERSION, KV, ARCH: installed`, modules.dep lists it);
#       also when it was already installed (nothing happens unless --force)
#   1   no NAME/VERSION
#   2   not added and no SOURCETREE/NAME-VERSION
#   5   --all
#   10  the build failed; 77 BUILD_EXCLUSIVE_* excludes KV: nothing installed
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0
put_source kmsbroken-1.0
put_source kmsexcl-1.0

echo "== install of an added module that is not built"
run add kmshello/1.0
run install kmshello/1.0 -k "$K1"
check_rc "install kmshello/1.0 -k $K1" 0
check_status "status says installed" "$(line_installed kmshello 1.0 "$K1")"
check "the module is INSTALLTREE/$K1/updates/dkms/kmshello.ko" installed_module "$K1" kmshello
ko=$(installed_module "$K1" kmshello)
check_eq "it is the module built for $K1 (vermagic)" "$K1" "$(modinfo -F vermagic "$ko" 2>/dev/null | cut -d' ' -f1)"
check_eq "it is kmshello (modinfo name)" kmshello "$(modinfo -F name "$ko" 2>/dev/null)"
check "depmod ran: $K1's modules.dep lists updates/dkms/kmshello.ko" depmod_lists "$K1" kmshello
before=$(stamp "$ko")

echo "== install again"
run install kmshello/1.0 -k "$K1"
check_rc "install of an installed module" 0
check_eq "the installed file is left alone" "$before" "$(stamp "$(installed_module "$K1" kmshello)")"

echo "== install --force"
run install kmshello/1.0 -k "$K1" --force
check_rc "install --force of an installed module" 0
check_status "still installed" "$(line_installed kmshello 1.0 "$K1")"
check "the module is still there" installed_module "$K1" kmshello
check "modules.dep still lists it" depmod_lists "$K1" kmshello

echo "== install for two kernels, one already installed"
run install kmshello/1.0 -k "$K1" -k "$K2"
check_rc "install -k $K1 -k $K2" 0
check_status "installed on both" "$(line_installed kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2")"
# 6.12 compresses its modules with xz: DKMS installs kmshello.ko.xz there (and .ko on
# 6.1.0-55); installed_module accepts either, the location and name are the contract.
check "INSTALLTREE/$K2/updates/dkms/kmshello.ko(.xz)" installed_module "$K2" kmshello
check "$K2's modules.dep lists it" depmod_lists "$K2" kmshello

echo "== install of a module that is not added, its source in the source tree"
run install kmsexcl/1.0 -k "$K2"
check_rc "install kmsexcl/1.0 -k $K2 (adds and builds it first)" 0
check_status "kmsexcl is installed on $K2" "$(line_installed kmsexcl 1.0 "$K2")" -m kmsexcl
check "INSTALLTREE/$K2/updates/dkms/kmsexcl.ko(.xz)" installed_module "$K2" kmsexcl

echo "== install where the build cannot or must not happen"
run install kmsexcl/1.0 -k "$K1"
check_rc "install on a kernel BUILD_EXCLUSIVE_KERNEL excludes" 77
check_not "nothing installed on $K1" installed_module "$K1" kmsexcl
run install kmsbroken/1.0 -k "$K1"
check_rc "install of a module that does not compile" 10
check_not "nothing installed" installed_module "$K1" kmsbroken
check_status "kmsbroken stays added" "$(line_added kmsbroken 1.0)" -m kmsbroken

echo "== bad arguments"
run install kmsnothere/1.0 -k "$K1"
check_rc "install of a module neither added nor in the source tree" 2
run install -k "$K1"
check_rc "install without a module" 1
run install kmshello/1.0 --all
check_rc "install --all" 5

check_status "final status" "$(
  line_installed kmshello 1.0 "$K1"
  line_installed kmshello 1.0 "$K2"
  line_installed kmsexcl 1.0 "$K2"
  line_added kmsbroken 1.0
)"

finish
