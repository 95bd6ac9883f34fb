#!/usr/bin/env bash
# `dkms build NAME/VERSION -k KV`: builds into the DKMS tree, installs nothing.
#   0   built (`status`: `NAME/VERSION, KV, ARCH: built`, the module in
#       DKMSTREE/NAME/VERSION/KV/ARCH/module/); also when it was already built (nothing is
#       rebuilt unless --force); a module that is not added yet but whose source is in the
#       source tree is added first
#   1   no NAME/VERSION; or no headers for KV
#   2   not added and no SOURCETREE/NAME-VERSION
#   5   --all
#   10  the build failed (the module stays `added`; the log is
#       DKMSTREE/NAME/VERSION/build/make.log, with the compiler's error)
#   77  BUILD_EXCLUSIVE_* excludes KV (Debian's common.postinst treats 77 as "skipped")
source "$(dirname "$0")/lib.sh"
setup
put_source kmshello-1.0
put_source kmsbroken-1.0
put_source kmsexcl-1.0

echo "== build"
run add kmshello/1.0
check_rc "add kmshello/1.0" 0
run build kmshello/1.0 -k "$K1"
check_rc "build kmshello/1.0 -k $K1" 0
check_status "status after build" "$(line_built kmshello 1.0 "$K1")"
# The DKMS tree is a documented interface, not only DKMS's own business: mktarball archives
# DKMSTREE/NAME/VERSION/KV/ARCH/{module,log} as they are, and Debian's dkms-autopkgtest and
# apport hook read DKMSTREE/NAME/VERSION/build/make.log after a failure.
check "the built module is in DKMSTREE/kmshello/1.0/$K1/$ARCH/module/" tree_module kmshello 1.0 "$K1" kmshello
check_not "build installs nothing" installed_module "$K1" kmshello
check_eq "the module is built for $K1 (vermagic)" "$K1" \
  "$(modinfo -F vermagic "$(tree_module kmshello 1.0 "$K1" kmshello)" 2>/dev/null | cut -d' ' -f1)"
before=$(stamp "$(tree_module kmshello 1.0 "$K1" kmshello)")

echo "== build again"
run build kmshello/1.0 -k "$K1"
check_rc "build of an already built module" 0
check_eq "nothing was rebuilt" "$before" "$(stamp "$(tree_module kmshello 1.0 "$K1" kmshello)")"
check_status "status unchanged" "$(line_built kmshello 1.0 "$K1")"

echo "== build --force"
run build kmshello/1.0 -k "$K1" --force
check_rc "build --force of an already built module" 0
check_not "the module was rebuilt (a new file)" test "$before" = "$(stamp "$(tree_module kmshello 1.0 "$K1" kmshello)")"
check_status "still built" "$(line_built kmshello 1.0 "$K1")"

echo "== build for two kernels, one already built"
run build kmshello/1.0 -k "$K1" -k "$K2"
check_rc "build -k $K1 -k $K2" 0
check_status "built for both" "$(line_built kmshello 1.0 "$K1"; line_built kmshello 1.0 "$K2")"
check "the $K2 module is in the tree (.ko or .ko.xz)" tree_module kmshello 1.0 "$K2" kmshello

echo "== build of a module that is not added, its source in the source tree"
run build kmsexcl/1.0 -k "$K2"
check_rc "build kmsexcl/1.0 -k $K2 (adds it first)" 0
check_status "kmsexcl is built on $K2" "$(line_built kmsexcl 1.0 "$K2")" -m kmsexcl

echo "== BUILD_EXCLUSIVE_KERNEL"
run build kmsexcl/1.0 -k "$K1"
check_rc "build on a kernel BUILD_EXCLUSIVE_KERNEL excludes" 77
check_status "not built for $K1" "$(line_added kmsexcl 1.0)" -m kmsexcl -k "$K1"
check_not "no module in the tree for $K1" tree_module kmsexcl 1.0 "$K1" kmsexcl

echo "== a build failure"
run add kmsbroken/1.0
run build kmsbroken/1.0 -k "$K1"
check_rc "build of a module that does not compile" 10
check_status "it stays added" "$(line_added kmsbroken 1.0)" -m kmsbroken
check_not "no module in the tree" tree_module kmsbroken 1.0 "$K1" kmsbroken
log=$(build_log kmsbroken 1.0 "$K1")
check "the build log is there ($log)" test -f "$log"
check "the log holds the compiler's error" grep -q "kmsbroken_no_such_symbol" "$log"
check_contains "the error names the log" "$log" "$ERR"

echo "== bad arguments"
run build kmsnothere/1.0 -k "$K1"
check_rc "build of a module neither added nor in the source tree" 2
run build -k "$K1"
check_rc "build without a module" 1
run build kmshello/1.0 --all
check_rc "build --all" 5
run build kmshello/1.0 -k 9.9.9-nosuchkernel
check_rc "build for a kernel without headers (not 77: that would read as skipped)" 1

check_status "the failures changed nothing else" "$(
  line_built kmshello 1.0 "$K1"
  line_built kmshello 1.0 "$K2"
  line_built kmsexcl 1.0 "$K2"
  line_added kmsbroken 1.0
)"
check_not "and installed nothing" test -e "$T/usr/lib/modules/$K1/updates"

finish
