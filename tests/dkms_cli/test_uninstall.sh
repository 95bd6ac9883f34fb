#!/usr/bin/env bash
# `dkms uninstall NAME/VERSION -k KV` / `--all`: takes the module out of INSTALLTREE/KV
# (and out of modules.dep) and leaves it built.
#   0  uninstalled (`status`: `NAME/VERSION, KV, ARCH: built`); also when it was not
#      installed on KV
#   1  no NAME/VERSION;  2  --all together with -k;  3  NAME/VERSION is not in the tree
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0

run install kmshello/1.0 -k "$K1" -k "$K2"
check_rc "install kmshello/1.0 on $K1 and $K2" 0
check_status "installed on both" "$(line_installed kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2")"
check "depmod lists it on $K1" depmod_lists "$K1" kmshello

echo "== uninstall -k"
run uninstall kmshello/1.0 -k "$K1"
check_rc "uninstall kmshello/1.0 -k $K1" 0
check_status "built on $K1, still installed on $K2" \
  "$(line_built kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2")"
check_not "the module file is gone from $K1" installed_module "$K1" kmshello
check_not "$K1's modules.dep no longer lists it" depmod_lists "$K1" kmshello
check "the $K2 module is untouched" installed_module "$K2" kmshello
check "the built module stays in the tree" tree_module kmshello 1.0 "$K1" kmshello

echo "== uninstall of a module that is not installed there"
run uninstall kmshello/1.0 -k "$K1"
check_rc "uninstall again" 0
check_status "status unchanged" "$(line_built kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2")"

echo "== bad arguments"
run uninstall kmsnothere/1.0 -k "$K1"
check_rc "uninstall of a module not in the tree" 3
run uninstall -k "$K1"
check_rc "uninstall without a module" 1
run uninstall kmshello/1.0 --all -k "$K2"
check_rc "uninstall --all -k" 2
check "the refused uninstalls left $K2 installed" installed_module "$K2" kmshello

echo "== uninstall --all"
run uninstall kmshello/1.0 --all
check_rc "uninstall kmshello/1.0 --all" 0
check_status "built on both, installed on none" "$(line_built kmshello 1.0 "$K1"; line_built kmshello 1.0 "$K2")"
check_not "the module file is gone from $K2" installed_module "$K2" kmshello
check_not "$K2's modules.dep no longer lists it" depmod_lists "$K2" kmshello

echo "== install again from the built state"
run install kmshello/1.0 -k "$K1"
check_rc "install after uninstall" 0
check_status "installed again on $K1" "$(line_installed kmshello 1.0 "$K1"; line_built kmshello 1.0 "$K2")"
check "the module file is back" installed_module "$K1" kmshello

finish
