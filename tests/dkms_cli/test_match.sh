#!/usr/bin/env bash
# `dkms match --templatekernel TKV -k KV [NAME]`: installs on KV every module/version that
# is installed on TKV.
#   0  done, or nothing installed on TKV ("nothing to be done")
#   1  no --templatekernel;  2  TKV = KV;  3  NAME given but not in the tree
#   4  more than one -k
# DKMS 3.0.10 bug, asserted as a divergence: match reads its own status lines with the
# pre-3.0 layout (`NAME, VERSION, KV, ARCH`), so for an installed module it tries to build
# module `NAME/VERSION` version `TKV` and exits 2 (its source directory
# `SOURCETREE/NAME/VERSION-TKV` does not exist), installing nothing. No script can depend
# on a match that never works: against DKMS the test proves the bug is as described,
# against a drop-in it asserts the documented behaviour (the module installed on KV).
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0

run install kmshello/1.0 -k "$K1"
check_rc "install kmshello/1.0 -k $K1 (the template)" 0
template_file=$(installed_module "$K1" kmshello)
template_stamp=$(stamp "$template_file")

echo "== bad arguments"
run match -k "$K2"
check_rc "match without --templatekernel" 1
run match --templatekernel "$K1" -k "$K1"
check_rc "match with the template as the target" 2
run match --templatekernel="$K1" -k "$K2" -k "$K1"
check_rc "match with two -k" 4
run match --templatekernel="$K1" -k "$K2" kmsnothere
check_rc "match of a module not in the tree" 3
check_status "the refused matches changed nothing" "$(line_installed kmshello 1.0 "$K1")"

echo "== nothing to match"
run match --templatekernel "$K2" -k "$K1"
check_rc "match from a template kernel with nothing installed" 0
check_status "status unchanged" "$(line_installed kmshello 1.0 "$K1")"

echo "== match"
run match --templatekernel="$K1" -k "$K2"
if [ "$IMPL" = dkms ]; then
  check_rc "DKMS 3.0.10 bug: match fails, looking for the source of 'kmshello/1.0' version '$K1'" 2
  check_contains "DKMS 3.0.10 bug: the directory it looks for" "$T/usr/src/kmshello/1.0-$K1" "$ERR"
  check_status "DKMS 3.0.10 bug: nothing installed on $K2" "$(line_installed kmshello 1.0 "$K1")"
else
  check_rc "match --templatekernel=$K1 -k $K2" 0
  check_status "kmshello is installed on $K2 too" "$(
    line_installed kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2")"
  check "INSTALLTREE/$K2/updates/dkms/kmshello.ko(.xz)" installed_module "$K2" kmshello
  check "$K2's modules.dep lists it" depmod_lists "$K2" kmshello
fi
check_eq "the template kernel's module is untouched" "$template_stamp" "$(stamp "$template_file")"

finish
