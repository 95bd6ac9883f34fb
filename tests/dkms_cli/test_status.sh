#!/usr/bin/env bash
# `dkms status [NAME[/VERSION]] [-m NAME] [-v VERSION] [-k KV[/ARCH]]...`: one line per
# module/version x kernel on stdout, in exactly these forms (scripts grep `: installed`
# and `: built`, and Debian's kernel prerm hook splits the line on `,:/ `):
#   NAME/VERSION: added
#   NAME/VERSION, KV, ARCH: built
#   NAME/VERSION, KV, ARCH: installed
# Always exit 0, also when nothing matches (then nothing is printed).
# DKMS quirk asserted here: with -k KV, a module that is not built for KV is listed as
# `NAME/VERSION: added`, even when it is built or installed for another kernel.
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0
clone_source kmshello-1.0 kmshello 2.0
put_source kmsbroken-1.0

echo "== empty"
run status
check_rc "status of an empty tree" 0
check_eq "prints nothing" "" "$OUT"

echo "== added"
run add kmshello/1.0
run add kmshello/2.0
run add kmsbroken/1.0
check_status "three added modules" "$(
  line_added kmsbroken 1.0; line_added kmshello 1.0; line_added kmshello 2.0)"

echo "== built and installed"
run build kmshello/1.0 -k "$K1"
check_rc "build kmshello/1.0 -k $K1" 0
run install kmshello/1.0 -k "$K2"
check_rc "install kmshello/1.0 -k $K2" 0
run status
check_rc "status" 0
check_eq "the exact status lines" \
  "$(printf '%s\n' "kmsbroken/1.0: added" \
    "kmshello/1.0, $K1, $ARCH: built" \
    "kmshello/1.0, $K2, $ARCH: installed" \
    "kmshello/2.0: added" | LC_ALL=C sort)" \
  "$(LC_ALL=C sort <<<"$OUT")"
check_eq "grep -c ': installed' finds one" 1 "$(grep -c ': installed' <<<"$OUT")"
check_eq "grep -c ': built' finds one" 1 "$(grep -c ': built' <<<"$OUT")"
fields=$(grep ': installed' <<<"$OUT" | { IFS=",:/ " read -r name version _ arch state; echo "$name $version $arch $state"; })
check_eq "the installed line splits on ',:/ ' as Debian's prerm hook splits it" "kmshello 1.0 $ARCH installed" "$fields"

echo "== filters"
all_hello="$(line_built kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2"; line_added kmshello 2.0)"
hello_1="$(line_built kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2")"
check_status "-m kmshello: every version" "$all_hello" -m kmshello
check_status "positional kmshello: every version" "$all_hello" kmshello
check_status "-m kmshello -v 1.0" "$hello_1" -m kmshello -v 1.0
check_status "-m kmshello/1.0" "$hello_1" -m kmshello/1.0
check_status "positional kmshello/1.0" "$hello_1" kmshello/1.0
check_status "-m kmshello -v 2.0" "$(line_added kmshello 2.0)" -m kmshello -v 2.0
check_status "-k $K1: its build, and the others as added" "$(
  line_added kmsbroken 1.0; line_built kmshello 1.0 "$K1"; line_added kmshello 2.0)" -k "$K1"
check_status "-k $K1/$ARCH: the same" "$(
  line_added kmsbroken 1.0; line_built kmshello 1.0 "$K1"; line_added kmshello 2.0)" -k "$K1/$ARCH"
check_status "-k $K1 -a $ARCH: the same" "$(
  line_added kmsbroken 1.0; line_built kmshello 1.0 "$K1"; line_added kmshello 2.0)" -k "$K1" -a "$ARCH"
check_status "kmshello/1.0 -k $K2" "$(line_installed kmshello 1.0 "$K2")" kmshello/1.0 -k "$K2"
check_status "kmshello/1.0 -k $K1 -k $K2" "$hello_1" kmshello/1.0 -k "$K1" -k "$K2"
check_status "-m kmsbroken -k $K2" "$(line_added kmsbroken 1.0)" -m kmsbroken -k "$K2"

echo "== no match"
run status -m kmsnothere
check_rc "status -m of an unknown module" 0
check_eq "prints nothing" "" "$OUT"
run status -m kmshello -v 9.9
check_rc "status of an unknown version" 0
check_eq "prints nothing" "" "$OUT"
run status -k 9.9.9-nosuchkernel -m kmshello -v 1.0
check_rc "status -k of a kernel without builds" 0
check_eq "the module shows as added" "$(line_added kmshello 1.0)" "$OUT"

finish
