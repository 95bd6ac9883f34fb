#!/usr/bin/env bash
# `dkms unbuild NAME/VERSION -k KV` / `--all`: uninstalls the module from KV if needed and
# drops the build for KV; the module stays added.
#   0  done (`status`: `NAME/VERSION: added` once no kernel is left); also when it was
#      not built for KV
#   1  no NAME/VERSION;  3  NAME/VERSION is not in the tree
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0

run install kmshello/1.0 -k "$K1"
check_rc "install kmshello/1.0 -k $K1" 0
run build kmshello/1.0 -k "$K2"
check_rc "build kmshello/1.0 -k $K2" 0
check_status "installed on $K1, built on $K2" "$(line_installed kmshello 1.0 "$K1"; line_built kmshello 1.0 "$K2")"

echo "== unbuild of an installed module"
run unbuild kmshello/1.0 -k "$K1"
check_rc "unbuild kmshello/1.0 -k $K1" 0
check_status "only the $K2 build is left" "$(line_built kmshello 1.0 "$K2")"
check_not "the installed module is gone from $K1" installed_module "$K1" kmshello
check_not "$K1's modules.dep no longer lists it" depmod_lists "$K1" kmshello
check_not "the $K1 build is gone from the tree" test -e "$T/var/lib/dkms/kmshello/1.0/$K1"
check "the $K2 build stays" tree_module kmshello 1.0 "$K2" kmshello

echo "== unbuild of a module not built there"
run unbuild kmshello/1.0 -k "$K1"
check_rc "unbuild again" 0
check_status "status unchanged" "$(line_built kmshello 1.0 "$K2")"

echo "== bad arguments"
run unbuild kmsnothere/1.0 -k "$K1"
check_rc "unbuild of a module not in the tree" 3
run unbuild -k "$K1"
check_rc "unbuild without a module" 1

echo "== unbuild --all"
run unbuild kmshello/1.0 --all
check_rc "unbuild kmshello/1.0 --all" 0
check_status "the module is only added" "$(line_added kmshello 1.0)"
check_not "no build left for $K2" tree_module kmshello 1.0 "$K2" kmshello
check "still registered: the source link stays" test -L "$T/var/lib/dkms/kmshello/1.0/source"
run add kmshello/1.0
check_rc "so add refuses it" 3
check "the source stays in the source tree" test -f "$T/usr/src/kmshello-1.0/dkms.conf"

finish
