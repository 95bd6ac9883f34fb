#!/usr/bin/env bash
# What happens to DKMS modules when a kernel is installed or removed. DKMS 3.0.10 has no
# kernel_postinst/kernel_prerm actions (they came with DKMS 3.1.4); on Debian the kernel
# packages run /etc/kernel/postinst.d/dkms KV (-> /usr/lib/dkms/dkms_autoinstaller
# start KV -> `dkms autoinstall --kernelver KV`) and /etc/kernel/prerm.d/dkms KV
# (`dkms status -k KV`, split on ',:/ ', then `dkms remove -m NAME -v VERSION -k KV -a
# ARCH` for each `installed` line). This suite runs those real hook scripts, copied from
# the dkms package with their /lib/modules and /etc/dkms paths moved into the test root,
# with a `dkms` on PATH that is the implementation under test (for kmodsync: its binary
# invoked under the name dkms) working on the test root.
#   postinst: exit 0 when every AUTOINSTALL module builds; each is installed for KV; a
#             build failure makes the hook fail (autoinstall's 11 comes out of it) while
#             the other modules are installed
#   prerm:    exit 0; every module installed for KV is removed from KV; the last kernel's
#             remove drops the module from the tree (DKMS 3.0.10's remove -k, see
#             test_remove.sh), so `status` no longer lists it
source "$(dirname "$0")/lib.sh"
setup
for hook in /etc/kernel/postinst.d/dkms /etc/kernel/prerm.d/dkms /usr/lib/dkms/dkms_autoinstaller; do
  [ -r "$hook" ] || skip "$hook is missing (it comes with Debian's dkms package)"
done

# The hooks, pointed at the test root.
H=$T/hooks
mkdir -p "$H/bin" "$T/etc/dkms"
sed -e "s|/usr/lib/dkms/dkms_autoinstaller|$H/dkms_autoinstaller|g" \
  -e "s|/lib/modules/|$T/lib/modules/|g" /etc/kernel/postinst.d/dkms >"$H/postinst"
sed -e "s|/lib/modules/|$T/lib/modules/|g" -e "s|/etc/dkms/|$T/etc/dkms/|g" \
  -e "s|^exec=\"/usr/sbin/dkms\"|exec=\"$H/bin/dkms\"|" /usr/lib/dkms/dkms_autoinstaller >"$H/dkms_autoinstaller"
sed -e "s|/lib/modules/|$T/lib/modules/|g" /etc/kernel/prerm.d/dkms >"$H/prerm"
chmod +x "$H/postinst" "$H/prerm" "$H/dkms_autoinstaller"
# host_paths: what in the copied hooks still leads outside the test root.
host_paths() {
  grep -ohE '[^ "=(]*(/lib/modules|/usr/lib/dkms/dkms_autoinstaller|/etc/dkms/no-autoinstall)' \
    "$H/postinst" "$H/prerm" "$H/dkms_autoinstaller" | grep -vF "$T/"
}
check_eq "the copied hooks name no host module directory" "" "$(host_paths)"

# `dkms` on the hooks' PATH: the implementation under test, on the test root.
mapfile -t TREES < <(tree_args "$T")
if [ "$IMPL" = dkms ]; then
  {
    echo '#!/bin/sh'
    printf 'exec env PATH=%q TMPDIR=%q sign_file=%q mok_signing_key=%q mok_certificate=%q %q' \
      "$T/bin:$PATH" "$T/tmp" "$T/no-sign-file" "$T/mok.key" "$T/mok.pub" "$DKMS_BIN"
    printf ' %q' "${TREES[@]}"
    echo ' "$@"'
  } >"$H/bin/dkms"
else
  mkdir -p "$H/as-dkms"
  ln -s "$KMODSYNC" "$H/as-dkms/dkms"
  {
    echo '#!/bin/sh'
    printf 'exec env TMPDIR=%q %q' "$T/tmp" "$H/as-dkms/dkms"
    printf ' %q' "${TREES[@]}"
    echo ' "$@"'
  } >"$H/bin/dkms"
fi
chmod +x "$H/bin/dkms"
hook() { env PATH="$H/bin:$PATH" "$@" </dev/null >"$T/tmp/hook.log" 2>&1; }

put_source kmshello-1.0
clone_source kmshello-1.0 kmsmanual 1.0
sed -i '/^AUTOINSTALL/d' "$T/usr/src/kmsmanual-1.0/dkms.conf"
run add kmshello/1.0
run add kmsmanual/1.0

echo "== kernel postinst"
hook "$H/postinst" "$K1"
check_eq "postinst.d/dkms $K1 exits 0" 0 "$?"
check_status "kmshello is installed for $K1, kmsmanual (no AUTOINSTALL) is not" \
  "$(line_installed kmshello 1.0 "$K1"; line_added kmsmanual 1.0)"
check "INSTALLTREE/$K1/updates/dkms/kmshello.ko" installed_module "$K1" kmshello
check "depmod lists it" depmod_lists "$K1" kmshello
hook "$H/postinst" "$K2"
check_eq "postinst.d/dkms $K2 exits 0" 0 "$?"
check_status "and for $K2" \
  "$(line_installed kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2"; line_added kmsmanual 1.0)"
check "INSTALLTREE/$K2/updates/dkms/kmshello.ko(.xz)" installed_module "$K2" kmshello
hook "$H/postinst" "$K1"
check_eq "postinst.d/dkms $K1 again exits 0" 0 "$?"
check_status "nothing changed" \
  "$(line_installed kmshello 1.0 "$K1"; line_installed kmshello 1.0 "$K2"; line_added kmsmanual 1.0)"

echo "== kernel prerm"
hook "$H/prerm" "$K1"
check_eq "prerm.d/dkms $K1 exits 0" 0 "$?"
check_status "kmshello is gone from $K1 only" "$(line_installed kmshello 1.0 "$K2"; line_added kmsmanual 1.0)"
check_not "the module file is gone from $K1" installed_module "$K1" kmshello
check_not "$K1's modules.dep no longer lists it" depmod_lists "$K1" kmshello
check "the $K2 module stays" installed_module "$K2" kmshello
hook "$H/prerm" "$K2"
check_eq "prerm.d/dkms $K2 exits 0" 0 "$?"
check_not "the module file is gone from $K2" installed_module "$K2" kmshello
check_status "the last kernel's remove dropped kmshello from the tree" "$(line_added kmsmanual 1.0)"
check "the source stays in the source tree" test -f "$T/usr/src/kmshello-1.0/dkms.conf"

echo "== kernel postinst with a module that does not compile"
put_source kmsbroken-1.0
run add kmshello/1.0
run add kmsbroken/1.0
hook "$H/postinst" "$K1"
rc=$?
# autoinstall's 11 comes out of the hook: the kernel package's postinst reports it.
if [ "$rc" != 0 ]; then pass "postinst.d/dkms $K1 fails (exit $rc)"; else fail "postinst.d/dkms $K1 exits 0 despite a build failure"; fi
check_status "kmshello is installed all the same, kmsbroken stays added" \
  "$(line_added kmsbroken 1.0; line_installed kmshello 1.0 "$K1"; line_added kmsmanual 1.0)"

finish
