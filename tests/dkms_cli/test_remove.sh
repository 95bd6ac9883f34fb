#!/usr/bin/env bash
# `dkms remove NAME/VERSION -k KV` / `--all`: uninstalls and unbuilds, then drops
# NAME/VERSION from the tree once no kernel has a build of it. The source in the source
# tree is never deleted.
#   0  removed
#   1  no NAME/VERSION;  2  --all with -k;  3  --all with -a, or NAME/VERSION not in the tree
# DKMS 3.0.10 quirks asserted here, because package scripts run into them:
#   - without -k and without --all, remove acts on the running kernel only (`uname -r`): a
#     module built for other kernels stays, untouched, and remove still exits 0;
#   - `remove -k KV` of the last kernel a module is built for drops the module from the
#     tree altogether (status no longer lists it, not even as `added`); Debian's kernel
#     prerm hook relies on this being a per-kernel remove.
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0
clone_source kmshello-1.0 kmshello 2.0

run install kmshello/1.0 -k "$K1" -k "$K2"
check_rc "install kmshello/1.0 on $K1 and $K2" 0
run add kmshello/2.0
check_rc "add kmshello/2.0" 0
check_status "the starting point" "$(
  line_installed kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2"; line_added kmshello 2.0)"

echo "== remove -k"
run remove kmshello/1.0 -k "$K1"
check_rc "remove kmshello/1.0 -k $K1" 0
check_status "gone from $K1 only" "$(line_installed kmshello 1.0 "$K2"; line_added kmshello 2.0)"
check_not "the module file is gone from $K1" installed_module "$K1" kmshello
check_not "$K1's modules.dep no longer lists it" depmod_lists "$K1" kmshello
check "the $K2 module is untouched" installed_module "$K2" kmshello

if foreign_running_kernel; then
  echo "== remove without -k (the running kernel, $RUNNING, has nothing)"
  run remove kmshello/1.0
  check_rc "remove kmshello/1.0 without -k or --all" 0
  check_status "nothing removed: only $RUNNING was meant" "$(line_installed kmshello 1.0 "$K2"; line_added kmshello 2.0)"
  check "the $K2 module is untouched" installed_module "$K2" kmshello
fi

echo "== remove -k of the last kernel"
run remove kmshello/1.0 -k "$K2"
check_rc "remove kmshello/1.0 -k $K2" 0
check_status "kmshello/1.0 is gone from the tree, 2.0 stays" "$(line_added kmshello 2.0)"
check_not "the module file is gone from $K2" installed_module "$K2" kmshello
check_not "$K2's modules.dep no longer lists it" depmod_lists "$K2" kmshello
check_not "DKMSTREE/kmshello/1.0 is gone" test -e "$T/var/lib/dkms/kmshello/1.0"
check "the source stays in the source tree" test -f "$T/usr/src/kmshello-1.0/dkms.conf"
run remove kmshello/1.0 -k "$K2"
check_rc "remove of a module no longer in the tree" 3

echo "== remove of a module that is only added"
run remove kmshello/2.0
check_rc "remove kmshello/2.0 (added, never built)" 0
check_status "the tree is empty" ""
check_not "DKMSTREE/kmshello is gone" test -e "$T/var/lib/dkms/kmshello"

echo "== remove --all"
run install kmshello/1.0 -k "$K1" -k "$K2"
check_rc "install kmshello/1.0 on both again" 0
run add kmshello/2.0
run remove kmshello/1.0 --all -k "$K1"
check_rc "remove --all -k" 2
run remove kmshello/1.0 --all -a "$ARCH"
check_rc "remove --all -a" 3
check_status "the refused removes changed nothing" "$(
  line_installed kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2"; line_added kmshello 2.0)"
run remove kmshello/1.0 --all
check_rc "remove kmshello/1.0 --all" 0
check_status "kmshello/1.0 is gone, 2.0 stays" "$(line_added kmshello 2.0)"
check_not "the module file is gone from $K1" installed_module "$K1" kmshello
check_not "the module file is gone from $K2" installed_module "$K2" kmshello
# shellcheck disable=SC2016
check_not "neither modules.dep lists it" eval 'depmod_lists "$K1" kmshello || depmod_lists "$K2" kmshello'
run remove -m kmshello -v 2.0 --all
check_rc "remove -m kmshello -v 2.0 --all (added only)" 0
check_status "the tree is empty" ""

echo "== bad arguments"
run remove
check_rc "remove without a module" 1
run remove kmsnothere/1.0 --all
check_rc "remove --all of a module not in the tree" 3
check "the sources were never touched" test -f "$T/usr/src/kmshello-2.0/hello.c"

finish
