#!/usr/bin/env bash
# `dkms add`: registers NAME/VERSION (source in the source tree) or a source directory
# (copied into the source tree), without building anything.
#   0  added; `status` says `NAME/VERSION: added`; DKMSTREE/NAME/VERSION/source is a
#      symlink to SOURCETREE/NAME-VERSION (Debian's common.postinst tests that link)
#   1  no NAME/VERSION given (nor a directory holding a dkms.conf)
#   2  NAME/VERSION given but SOURCETREE/NAME-VERSION does not exist
#   3  NAME/VERSION is already in the tree (scripts run `dkms add ... || true`)
#   5  --all
#   8  the dkms.conf is invalid (a bad DEST_MODULE_LOCATION, no PACKAGE_VERSION)
source "$(dirname "$0")/lib.sh"
setup

echo "== an empty tree"
run status
check_rc "status of an empty tree" 0
check_eq "status of an empty tree prints nothing" "" "$OUT"

echo "== add NAME/VERSION"
put_source kmshello-1.0
run add kmshello/1.0
check_rc "add kmshello/1.0" 0
check_status "status after add" "$(line_added kmshello 1.0)"
# /usr/lib/dkms/common.postinst tests -e /var/lib/dkms/NAME/VERSION (to remove an old
# registration) and -L /var/lib/dkms/NAME/VERSION/source (else it skips the build as a
# "binaries-only package").
check "the tree links DKMSTREE/kmshello/1.0/source" test -L "$T/var/lib/dkms/kmshello/1.0/source"
check_eq "the source link leads to SOURCETREE/kmshello-1.0" \
  "$T/usr/src/kmshello-1.0" "$(source_link kmshello 1.0)"
check_not "add builds nothing (no kernel directory in the tree)" test -e "$T/var/lib/dkms/kmshello/1.0/$K1"
check_not "add installs nothing" test -e "$T/usr/lib/modules/$K1/updates"

echo "== adding it again"
run add kmshello/1.0
check_rc "add kmshello/1.0 a second time" 3
run add -m kmshello -v 1.0
check_rc "add -m kmshello -v 1.0 a second time" 3
run add "$T/usr/src/kmshello-1.0"
check_rc "add SOURCETREE/kmshello-1.0 (the same module by its directory)" 3
check_status "status unchanged by the refused adds" "$(line_added kmshello 1.0)"

echo "== bad arguments"
run add -m kmsnothere -v 1.0
check_rc "add of a module whose source directory does not exist" 2
run add
check_rc "add without a module" 1
run add "$T/no/such/dir"
check_rc "add of a path that does not exist (taken as no module)" 1
run add --all kmshello/1.0
check_rc "add --all" 5
check_status "nothing added by the failed adds" "$(line_added kmshello 1.0)"

echo "== an invalid dkms.conf"
clone_source kmshello-1.0 kmsbadloc 1.0
sed -i 's|"/updates/dkms"|"/opt/elsewhere"|' "$T/usr/src/kmsbadloc-1.0/dkms.conf"
run add kmsbadloc/1.0
check_rc "add of a dkms.conf whose DEST_MODULE_LOCATION is not /kernel, /updates or /extra" 8
mkdir -p "$T/elsewhere/noversion"
cp -a "$FIXTURES/kmshello-1.0/." "$T/elsewhere/noversion/"
sed -i '/PACKAGE_VERSION/d' "$T/elsewhere/noversion/dkms.conf"
run add "$T/elsewhere/noversion"
check_rc "add of a directory whose dkms.conf has no PACKAGE_VERSION" 8
check_status "no invalid module was added" "$(line_added kmshello 1.0)"

echo "== add DIRECTORY (outside the source tree)"
mkdir -p "$T/elsewhere"
cp -a "$FIXTURES/kmsexcl-1.0" "$T/elsewhere/"
run add "$T/elsewhere/kmsexcl-1.0"
check_rc "add of a directory outside the source tree" 0
check "the directory is copied to SOURCETREE/kmsexcl-1.0" test -f "$T/usr/src/kmsexcl-1.0/dkms.conf"
check "with its sources" test -f "$T/usr/src/kmsexcl-1.0/excl.c"
check_eq "the source link leads to the copy, not the original" \
  "$T/usr/src/kmsexcl-1.0" "$(source_link kmsexcl 1.0)"

echo "== add PATH/dkms.conf"
cp -a "$FIXTURES/kmsbroken-1.0" "$T/elsewhere/"
run add "$T/elsewhere/kmsbroken-1.0/dkms.conf"
check_rc "add of a path to a dkms.conf" 0
check "its directory is copied to SOURCETREE/kmsbroken-1.0" test -f "$T/usr/src/kmsbroken-1.0/broken.c"

echo "== add DIRECTORY inside the source tree"
clone_source kmshello-1.0 kmsmanual 1.0
run add "$T/usr/src/kmsmanual-1.0"
check_rc "add of SOURCETREE/kmsmanual-1.0 by its path" 0

check_status "status lists every added module" "$(
  line_added kmsbroken 1.0
  line_added kmsexcl 1.0
  line_added kmshello 1.0
  line_added kmsmanual 1.0
)"
check_not "adding built nothing" test -e "$T/usr/lib/modules/$K1/updates"

finish
