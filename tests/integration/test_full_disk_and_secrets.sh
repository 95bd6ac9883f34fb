#!/usr/bin/env bash
# A full disk under /usr/lib/modules, and the module signing key kept from builds
# (issue 9, points 4 and 5).
#
# (a) Full disk. ROOT/usr/lib/modules is a small tmpfs (kmodsync's state, ROOT/var/lib/
#     kmodsync, stays on the ordinary disk), filled with a filler file until 4 KiB are left:
#     less than kmshello.ko (about 5 KiB on 6.1, uncompressed), so the module's temporary
#     file is written in part before ENOSPC. The pass must fail the cell (exit 1, not 2 or a
#     crash) with an error naming the module, the kernel and "No space left on device",
#     leave no module and no *.kmodsync-* temporary file under /usr/lib/modules, leave a
#     module installed before (kmshello2) and modules.dep as they were, and keep
#     state.json loadable. With the filler deleted, the next plain `sync` must install the
#     cell: the module whole (modinfo, vermagic, the recorded SHA-256), in modules.dep.
# (b) Secrets. `kmodsync keygen` makes ROOT/var/lib/kmodsync/signing.key (0600); kmshello's
#     Makefile gets a line that, while kbuild reads it (so as the build user), records
#     `id -u` and tries `cat KEY` into a build_writable directory. The module must come out
#     signed by that key; the build must have run as a non-root uid that could not read the
#     key; no line of the key's PEM body and not its DER bytes may appear under
#     ROOT/var/lib/kmodsync (but the key file itself), in the build_writable directory or in
#     the installed modules. Then the key at 0644 and 0640: the pass refuses to start
#     (exit 2) with a message naming the key file and its mode, and installs nothing (the
#     module, deleted by hand before, stays absent); at 0600 again the pass installs it,
#     signed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/module_checks.sh"

K1=6.1.0-55-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures

require_tools jq modinfo make gcc openssl python3 sha256sum mount umount mountpoint
require_headers "$K1"
[ "$(id -u)" -eq 0 ] || skip "needs root (mounts a tmpfs, builds as an unprivileged user)"
SUITE_START=$SECONDS

FULL=$WORK/full
TMPFS=$FULL/usr/lib/modules
cleanup() {
  if mountpoint -q "$TMPFS" 2>/dev/null; then umount "$TMPFS" || umount -l "$TMPFS"; fi
}
trap cleanup EXIT

echo "== (a) a full disk under /usr/lib/modules"
mkdir -p "$TMPFS"
if ! mount -t tmpfs -o size=1m,mode=755 kmodsync-full-disk "$TMPFS"; then
  skip "cannot mount a tmpfs"
fi
make_root "$FULL" "$K1"
# A bystander installed while there is room: kmshello2, kmshello's code under other names.
dir=$FULL/usr/src/kmshello2-1.0
mkdir -p "$dir"
sed 's/kmshello/kmshello2/g' "$FIXTURES/kmshello-1.0/hello.c" >"$dir/hello2.c"
printf 'obj-m := kmshello2.o\nkmshello2-y := hello2.o\n' >"$dir/Makefile"
sed 's/kmshello/kmshello2/g' "$FIXTURES/kmshello-1.0/dkms.conf" >"$dir/dkms.conf"
"$KMODSYNC" --root "$FULL" sync >"$WORK/bystander.out" 2>&1
check_eq "the bystander kmshello2 installs while there is room" 0 $?
bystander=$(module_file "$FULL" "$K1" kmshello2)
bystander_sum=$(sha256sum <"$bystander" 2>/dev/null)
dep_before=$(cat "$TMPFS/$K1/modules.dep" 2>/dev/null)
check_eq "modules.dep names it" 1 "$(in_modules_dep "$FULL" "$K1" kmshello2)"
cp -a "$FIXTURES/kmshello-1.0" "$FULL/usr/src/"
# Fill it, then give back 4 KiB.
dd if=/dev/zero of="$TMPFS/filler" bs=4096 status=none 2>/dev/null
truncate -s $(($(stat -c %s "$TMPFS/filler") - 4096)) "$TMPFS/filler"
free_bytes=$(df -B1 --output=avail "$TMPFS" | tail -n 1 | tr -d ' ')
check_eq "the tmpfs has 4 KiB free" 4096 "$free_bytes"
check "the state directory is not on the tmpfs" test "$(stat -c %d "$FULL/usr/src")" != "$(stat -c %d "$TMPFS")"

"$KMODSYNC" --root "$FULL" sync >"$WORK/full.out" 2>"$WORK/full.err"
rc=$?
check_eq "the pass exits 1 (a failed cell; not 2, not a crash)" 1 "$rc"
[ "$rc" -eq 1 ] || sed 's/^/    /' "$WORK/full.out" "$WORK/full.err"
failed_line=$(grep -E "^ *failed +kmshello/1.0 for $K1: " "$WORK/full.out")
check "the cell is reported failed, naming kmshello/1.0 and $K1" test -n "$failed_line"
check "the failure says 'No space left on device'" grep -q "No space left on device" <<<"$failed_line"
echo "    $failed_line"
check "status runs (state.json loads)" "$KMODSYNC" --root "$FULL" status
check "state.json is JSON" jq -e . "$FULL/var/lib/kmodsync/state.json"
"$KMODSYNC" --root "$FULL" status --json >"$WORK/full-status.json" 2>/dev/null
check_eq "status: the cell is failed" failed "$(cell_field "$WORK/full-status.json" kmshello "$K1" state)"
check "status: its reason says 'No space left on device'" \
  grep -q "No space left on device" <<<"$(cell_field "$WORK/full-status.json" kmshello "$K1" reason)"
check_eq "status: the cell records no installed file" "[]" \
  "$(jq -c --arg k "$K1" '[.cells[] | select(.kernel == $k and .module == "kmshello") | .files[]]' "$WORK/full-status.json")"
check_eq "no kmshello module file under /usr/lib/modules" "" "$(find "$TMPFS" -name 'kmshello.ko*')"
check "the bystander is reported up to date" grep -qE "^ *up-to-date +kmshello2/1.0 for $K1" "$WORK/full.out"
check_eq "the bystander's file is untouched" "$bystander_sum" "$(sha256sum <"$bystander" 2>/dev/null)"
check_eq "modules.dep is untouched (still naming the bystander)" "$dep_before" "$(cat "$TMPFS/$K1/modules.dep" 2>/dev/null)"
check_eq "no temporary file (*.kmodsync-*) under /usr/lib/modules" "" "$(find "$TMPFS" -name '*.kmodsync-*')"
check_eq "no temporary file (*.kmodsync-*) elsewhere in the root" "" \
  "$(find "$FULL" -name '*.kmodsync-*' ! -path '*/build/.kmodsync-tmp' ! -path '*/build/.kmodsync-tmp/*')"
check_eq "no tmp- entry in the build cache" "" "$(find "$FULL/var/lib/kmodsync/cache" -name 'tmp-*' 2>/dev/null)"

echo "== (a) the space freed: the next pass installs"
rm -f "$TMPFS/filler"
"$KMODSYNC" --root "$FULL" sync >"$WORK/freed.out" 2>"$WORK/freed.err"
rc=$?
check_eq "a plain sync after the space is freed exits 0" 0 "$rc"
check "it reports kmshello/1.0 installed for $K1" grep -qE "^ *installed +kmshello/1.0 for $K1" "$WORK/freed.out"
if [ "$rc" -ne 0 ]; then
  sed 's/^/    /' "$WORK/freed.out" "$WORK/freed.err"
  # The rest of the checks need the module: --retry gets it (reported apart).
  "$KMODSYNC" --root "$FULL" sync --retry >"$WORK/retry.out" 2>&1
  check_eq "(after the failure above) sync --retry exits 0" 0 $?
fi
"$KMODSYNC" --root "$FULL" status --json >"$WORK/freed-status.json" 2>/dev/null
check_eq "status: the cell is installed" installed "$(cell_field "$WORK/freed-status.json" kmshello "$K1" state)"
file=$(module_file "$FULL" "$K1" kmshello)
check "the module is installed" test -n "$file"
if [ -n "$file" ]; then
  check "modinfo reads it" modinfo "$file"
  check_eq "its vermagic" "$K1" "$(modinfo -F vermagic "$file" | cut -d' ' -f1)"
  check "it is larger than the 4 KiB that were free (the first write really hit ENOSPC)" test "$(stat -c %s "$file")" -gt 4096
  check_eq "its SHA-256 is the one status records" \
    "$(jq -r --arg k "$K1" '.cells[] | select(.kernel == $k and .module == "kmshello") | .files[0].sha256' "$WORK/freed-status.json")" \
    "$(sha256sum <"$file" | cut -d' ' -f1)"
  check_eq "it is in modules.dep" 1 "$(in_modules_dep "$FULL" "$K1" kmshello)"
fi
check_eq "the bystander is still in modules.dep" 1 "$(in_modules_dep "$FULL" "$K1" kmshello2)"
check_eq "no temporary file (*.kmodsync-*) under /usr/lib/modules" "" "$(find "$TMPFS" -name '*.kmodsync-*')"
cleanup
check "the tmpfs is unmounted" test ! -e "$TMPFS/$K1"

echo "== (b) the signing key: modules signed, the key never reaches a build"
KEYS=$WORK/keys
SPY=$WORK/spy
mkdir -p "$SPY"
chmod 777 "$SPY"
make_root "$KEYS" "$K1"
"$KMODSYNC" --root "$KEYS" keygen >"$WORK/keygen.out" 2>&1
check_eq "keygen exits 0" 0 $?
KEY=$KEYS/var/lib/kmodsync/signing.key
CRT=$KEYS/var/lib/kmodsync/signing.crt
check_eq "the key is root's, mode 600" "root 600" "$(stat -c '%U %a' "$KEY" 2>/dev/null)"
check "the certificate is DER" openssl x509 -inform DER -in "$CRT" -noout
mkdir -p "$KEYS/etc/kmodsync"
echo "build_writable = $SPY" >"$KEYS/etc/kmodsync/kmodsync.conf"
cp -a "$FIXTURES/kmshello-1.0" "$KEYS/usr/src/"
# Read by kbuild as the build user: its uid, and an attempt at the key.
cat >>"$KEYS/usr/src/kmshello-1.0/Makefile" <<EOF
\$(shell id -u >$SPY/uid; cat $KEY >$SPY/key 2>$SPY/key.err; echo \$\$? >$SPY/key.rc)
EOF

"$KMODSYNC" --root "$KEYS" sync >"$WORK/keys.out" 2>&1
rc=$?
check_eq "the pass exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || sed 's/^/    /' "$WORK/keys.out"
file=$(module_file "$KEYS" "$K1" kmshello)
check "kmshello is installed" test -n "$file"
subject_cn=$(openssl x509 -inform DER -in "$CRT" -noout -subject -nameopt multiline 2>/dev/null | sed -n 's/^ *commonName *= *//p')
if [ -n "$file" ]; then
  check_eq "modinfo: signed by the generated key (signer = its certificate's CN)" "$subject_cn" "$(modinfo -F signer "$file")"
  check "the module ends with the signature trailer" grep -qa "Module signature appended" <<<"$(tail -c 28 "$file")"
  serial=$(openssl x509 -inform DER -in "$CRT" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
  sig_key=$(modinfo -F sig_key "$file" | tr -d ':\n ' | tr 'A-F' 'a-f' | sed 's/^0*//')
  check_eq "modinfo: sig_key is the certificate's serial" "$serial" "$sig_key"
fi

build_uid=$(cat "$SPY/uid" 2>/dev/null)
check "the build recorded its uid" test -n "$build_uid"
check "the build ran as a non-root user (uid $build_uid)" test -n "$build_uid" -a "$build_uid" != 0
check "the build's cat of the key failed (non-zero exit: $(cat "$SPY/key.rc" 2>/dev/null))" \
  test -s "$SPY/key.rc" -a "$(cat "$SPY/key.rc" 2>/dev/null)" != 0
check_eq "the build got none of the key's bytes" 0 "$(stat -c %s "$SPY/key" 2>/dev/null || echo missing)"
check "the build was told 'Permission denied'" grep -q "Permission denied" "$SPY/key.err"

# The key's PEM body lines and its DER bytes, looked for everywhere the build or kmodsync
# writes (but the key file itself).
grep -v -- '-----' "$KEY" >"$WORK/key-lines"
openssl pkey -in "$KEY" -outform DER -out "$WORK/key.der" 2>/dev/null
openssl pkey -in "$KEY" -pubout -outform DER -out "$WORK/pub.der" 2>/dev/null
check_eq "the key's PEM body has lines to look for" yes "$([ "$(wc -l <"$WORK/key-lines")" -ge 20 ] && echo yes)"
STATE=$KEYS/var/lib/kmodsync
for dir in build log cache; do
  check "$STATE/$dir exists" test -d "$STATE/$dir"
done
leaks=$(grep -rlF -f "$WORK/key-lines" "$STATE" "$SPY" "$KEYS/usr/lib/modules" 2>/dev/null | grep -vxF "$KEY")
check_eq "no line of the key's PEM body under var/lib/kmodsync (build, log, cache, ...), the build_writable dir or the modules" "" "$leaks"
der_leaks=$(python3 - "$WORK/key.der" "$WORK/pub.der" "$KEY" "$STATE" "$SPY" "$KEYS/usr/lib/modules" <<'EOF'
import os, sys
der = open(sys.argv[1], "rb").read()
public = open(sys.argv[2], "rb").read()
key = os.path.realpath(sys.argv[3])
# 64-byte windows of the DER, but those that are public (the modulus is in the
# certificate too): any of them is as telling as the whole key.
needles = [der[i:i + 64] for i in range(0, len(der) - 64, 16)]
needles = [n for n in needles if n not in public]
if len(needles) < 50:
    print("too few private windows in the key's DER")
for top in sys.argv[4:]:
    for dirpath, _, files in os.walk(top):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.realpath(path) == key or not os.path.isfile(path) or os.path.islink(path):
                continue
            data = open(path, "rb").read()
            if any(n in data for n in needles):
                print(path)
EOF
)
check_eq "no part of the key's DER bytes there either" "" "$der_leaks"
logs=$(find "$STATE/log" "$STATE/cache" -name '*.log' | wc -l)
check "the build logs were searched ($logs)" test "$logs" -ge 1
check "the build log says it built as the unprivileged uid" \
  grep -q "building as uid $build_uid" "$STATE/log/$K1/kmshello-1.0.log"

echo "== (b) a key that others can read is refused"
rm -f "$file"
for mode in 644 640; do
  chmod "$mode" "$KEY"
  "$KMODSYNC" --root "$KEYS" sync >"$WORK/refused.out" 2>"$WORK/refused.err"
  rc=$?
  check_eq "key at $mode: the pass exits 2 (an environment error)" 2 "$rc"
  check "key at $mode: the message names the key file" grep -qF "$KEY" "$WORK/refused.err"
  check "key at $mode: the message names the mode (0$mode)" grep -qF "0$mode" "$WORK/refused.err"
  echo "    $(head -n 1 "$WORK/refused.err")"
  check_eq "key at $mode: nothing installed (the deleted module stays absent)" "" "$(module_file "$KEYS" "$K1" kmshello)"
done
chmod 600 "$KEY"
"$KMODSYNC" --root "$KEYS" sync >"$WORK/again.out" 2>&1
check_eq "key at 600 again: the pass exits 0" 0 $?
file=$(module_file "$KEYS" "$K1" kmshello)
check "key at 600 again: kmshello is installed again" test -n "$file"
[ -z "$file" ] || check_eq "key at 600 again: signed by the key" "$subject_cn" "$(modinfo -F signer "$file")"
check_eq "key at 600 again: in modules.dep" 1 "$(in_modules_dep "$KEYS" "$K1" kmshello)"

echo "  time  total: $((SECONDS - SUITE_START)) s"
finish
