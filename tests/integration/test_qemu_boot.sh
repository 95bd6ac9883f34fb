#!/usr/bin/env bash
# A module that kmodsync built, signed and compressed is a real module: its signature
# verifies against kmodsync's certificate, and the real Debian kernel, booted under qemu
# (software emulation), loads the installed .ko.xz through its own decompression.
source "$(dirname "$0")/lib.sh"

KV=6.12.107+deb12-amd64
VMLINUZ=/boot/vmlinuz-$KV
QEMU_DIR=$(cd "$(dirname "$0")/qemu" && pwd)
require_tools qemu-system-x86_64 busybox xz openssl cpio gcc gzip timeout modinfo readelf od \
  make dpkg-deb apt-get depmod
require_headers "$KV"
[ -r "$VMLINUZ" ] || skip "$VMLINUZ is missing (apt-get install linux-image-$KV)"
if readelf -l "$(command -v busybox)" 2>/dev/null | grep -q 'program interpreter'; then
  skip "busybox is dynamically linked (apt-get install busybox-static)"
fi
echo 'int main(void){return 0;}' >"$WORK/static.c"
gcc -static -o "$WORK/static" "$WORK/static.c" 2>/dev/null || skip "gcc -static cannot link (libc6-dev)"
fetch_sources acpi-call-dkms

R=$WORK/root
make_root "$R" "$KV"
add_sources "$R" acpi-call-dkms
STATE=$R/var/lib/kmodsync
KEY=$STATE/signing.key
CRT=$STATE/signing.crt
KO_XZ=$R/usr/lib/modules/$KV/updates/dkms/acpi_call.ko.xz

echo "== keygen"
"$KMODSYNC" --root "$R" keygen >"$WORK/keygen.out" 2>&1
check_eq "keygen exits 0" 0 $?
check "signing.key exists" test -f "$KEY"
check "signing.crt exists" test -f "$CRT"
check_eq "signing.key is mode 0600" 600 "$(stat -c %a "$KEY" 2>/dev/null)"
is_pem_key() { grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$1" && openssl pkey -in "$1" -passin pass: -noout </dev/null; }
check "signing.key is an unencrypted PEM private key" is_pem_key "$KEY"
check "signing.crt is a DER X.509 certificate" openssl x509 -inform DER -in "$CRT" -noout
openssl x509 -inform DER -in "$CRT" -out "$WORK/cert.pem" 2>/dev/null
# check_same DESCRIPTION EXPECTED ACTUAL: check_eq that an empty EXPECTED cannot pass.
check_same() {
  if [ -z "$2" ]; then fail "$1: nothing to compare with"; else check_eq "$@"; fi
}
check_same "the certificate holds the key's public half" \
  "$(openssl pkey -in "$KEY" -passin pass: -pubout </dev/null 2>/dev/null)" "$(openssl x509 -in "$WORK/cert.pem" -noout -pubkey 2>/dev/null)"
cert_cn=$(openssl x509 -in "$WORK/cert.pem" -noout -subject -nameopt multiline 2>/dev/null \
  | sed -n 's/^ *commonName *= *//p')
cert_serial=$(openssl x509 -in "$WORK/cert.pem" -noout -serial 2>/dev/null | sed 's/^serial=//')
cert_ski=$(openssl x509 -in "$WORK/cert.pem" -noout -ext subjectKeyIdentifier 2>/dev/null \
  | sed -n '2s/[ :]//gp')
check "the certificate has a CN" test -n "$cert_cn"
echo "  (certificate: CN '$cert_cn', serial $cert_serial)"

echo "== sync signs and compresses"
"$KMODSYNC" --root "$R" sync >"$WORK/sync.out" 2>&1
check_eq "sync exits 0" 0 $?
check "acpi_call.ko.xz is installed (the kernel's own modules are .ko.xz)" test -f "$KO_XZ"
check "no uncompressed acpi_call.ko beside it" test ! -e "${KO_XZ%.xz}"
check "acpi_call.ko.xz is valid xz" xz -t "$KO_XZ"
# The kernel's decompressor (lib/xz) knows CRC32 and no check, not xz's default CRC64: a
# CRC64 .ko.xz loads through userspace decompression (kmod 30, busybox insmod) but
# finit_module(MODULE_INIT_COMPRESSED_FILE) fails with EINVAL. The kernel's own modules
# are made with `xz --check=crc32 --lzma2=dict=1MiB`.
check_eq "its xz integrity check is CRC32 (what the kernel's decompressor supports)" CRC32 \
  "$(xz --robot --list "$KO_XZ" 2>/dev/null | awk '$1 == "totals" { print $7 }')"
check "depmod indexed acpi_call.ko.xz" grep -q '^updates/dkms/acpi_call.ko.xz:' "$R/usr/lib/modules/$KV/modules.dep"
check_eq "vermagic is $KV" "$KV" "$(modinfo -F vermagic "$KO_XZ" 2>/dev/null | cut -d' ' -f1)"
check_eq "modinfo sig_id" "PKCS#7" "$(modinfo -F sig_id "$KO_XZ" 2>/dev/null)"
check_same "modinfo signer is the certificate's CN" "$cert_cn" "$(modinfo -F signer "$KO_XZ" 2>/dev/null)"
sig_key=$(modinfo -F sig_key "$KO_XZ" 2>/dev/null | tr -d ':' | tr a-f A-F)
# sign-file names the signer by issuer and serial (its default) or, with -k, by the
# subject key identifier; either identifies this certificate to the kernel.
if [ -n "$cert_ski" ] && [ "$sig_key" = "$(tr a-f A-F <<<"$cert_ski")" ]; then
  pass "modinfo sig_key is the certificate's subject key identifier"
else
  check_same "modinfo sig_key is the certificate's serial" "$(tr a-f A-F <<<"$cert_serial")" "$sig_key"
fi
check_eq "modinfo sig_hashalgo is the kernel's CONFIG_MODULE_SIG_HASH" sha256 \
  "$(modinfo -F sig_hashalgo "$KO_XZ" 2>/dev/null)"

echo "== the appended signature verifies against the certificate"
MODULE=$WORK/acpi_call.ko
: >"$MODULE"
[ -f "$KO_XZ" ] && xz -dc "$KO_XZ" >"$MODULE" 2>/dev/null
hex() { od -An -v -tx1 | tr -d ' \n'; }
size=$(stat -c %s "$MODULE")
check_eq "the module ends with the 28-byte magic '~Module signature appended~\\n'" \
  "$(printf '~Module signature appended~\n' | hex)" "$(tail -c 28 "$MODULE" | hex)"
# struct module_signature (12 bytes) before the magic: algo, hash, id_type, signer_len,
# key_id_len, 3 bytes of padding, then sig_len as a big-endian 32-bit number.
read -r -a trailer <<<"$(tail -c 40 "$MODULE" | head -c 12 | od -An -v -tu1)"
sig_len=0
content_len=0
if [ "${#trailer[@]}" -eq 12 ]; then
  sig_len=$(( (trailer[8] << 24) | (trailer[9] << 16) | (trailer[10] << 8) | trailer[11] ))
  content_len=$(( size - 40 - sig_len ))
fi
check_eq "module_signature id_type is PKEY_ID_PKCS7 (2)" 2 "${trailer[2]:-none}"
check "sig_len ($sig_len) fits in the module" test "$sig_len" -gt 0 -a "$content_len" -gt 0
if [ "$content_len" -gt 0 ]; then
  head -c "$content_len" "$MODULE" >"$WORK/content.ko"
  tail -c $(( sig_len + 40 )) "$MODULE" | head -c "$sig_len" >"$WORK/sig.der"
else
  : >"$WORK/content.ko"
  : >"$WORK/sig.der"
fi
check_eq "the signed content is an ELF object" "$(printf '\177ELF')" "$(head -c 4 "$WORK/content.ko")"
check "the signature is a PKCS#7 DER structure" openssl pkcs7 -inform DER -in "$WORK/sig.der" -noout
verify() { # verify CONTENT [CERT]: the detached signature over CONTENT, by CERT only
  openssl cms -verify -binary -inform DER -in "$WORK/sig.der" -content "$1" \
    -certfile "${2:-$WORK/cert.pem}" -nointern -noverify -out /dev/null
}
fails() { ! "$@"; }
# Each negative check also needs the intact signature to verify, so that it has teeth.
rejects() { verify "$WORK/content.ko" && fails verify "$@"; }
check "openssl cms verifies the signature with signing.crt" verify "$WORK/content.ko"
cp "$WORK/content.ko" "$WORK/corrupt.ko"
if [ "$content_len" -gt 100 ]; then
  # Flip one byte in the middle of the content.
  offset=$(( content_len / 2 ))
  byte=$(od -An -j "$offset" -N1 -tu1 "$WORK/content.ko" | tr -d ' ')
  printf '%b' "\\0$(printf %03o $(( byte ^ 0xff )))" \
    | dd of="$WORK/corrupt.ko" bs=1 seek="$offset" conv=notrunc status=none
fi
check "the copy has one corrupted byte" fails cmp -s "$WORK/content.ko" "$WORK/corrupt.ko"
check "a corrupted content byte fails verification" rejects "$WORK/corrupt.ko"
openssl req -new -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other -keyout /dev/null \
  -out "$WORK/other.pem" 2>/dev/null
check "another certificate fails verification" rejects "$WORK/content.ko" "$WORK/other.pem"

echo "== the real kernel loads it (qemu, software emulation)"
boot_and_load() {
  local Q=$WORK/qemu rc start nonce failed_before=$FAILED
  start=$(date +%s)
  "$QEMU_DIR/boot.sh" "$Q" "$VMLINUZ" "$KO_XZ"
  rc=$?
  echo "  (qemu ran $(( $(date +%s) - start )) s; serial console: $Q/console.log)"
  nonce=$(cat "$Q/nonce" 2>/dev/null)
  section() { # section NAME: the console lines between NAME-BEGIN and NAME-END
    awk -v b="@@KMODSYNC-$nonce@@ $1-BEGIN" -v e="@@KMODSYNC-$nonce@@ $1-END" \
      'index($0, e) == 1 { f = 0 } f { print } index($0, b) == 1 { f = 1 }' "$Q/console.log"
  }
  marker() { grep "^@@KMODSYNC-$nonce@@ $1" "$Q/console.log"; }
  check_eq "qemu exited by itself (no timeout)" 0 "$rc"
  check "the guest's /init ran to the end" marker DONE
  check "no kernel panic (panic=-1 would also end qemu)" fails grep -q 'Kernel panic' "$Q/console.log"
  check_eq "finit_module(MODULE_INIT_COMPRESSED_FILE) of acpi_call.ko.xz returned 0" \
    "@@KMODSYNC-$nonce@@ LOAD-RC acpi_call.ko.xz 0" "$(marker LOAD-RC)"
  check "acpi_call is in the guest's /proc/modules" grep -q '^acpi_call ' <<<"$(section PROC-MODULES)"
  echo "  kernel messages about the module (an untrusted key taints; CONFIG_MODULE_SIG_FORCE is off):"
  section DMESG | grep -v 'ACPI: Added _OSI' | sed 's/^/    /'
  if [ "$FAILED" -ne "$failed_before" ]; then
    echo "  serial console, last lines:"
    grep -v -e '^$' "$Q/console.log" | tail -n 40 | sed 's/^/    | /'
    [ -s "$Q/qemu.stderr" ] && sed 's/^/    qemu: /' "$Q/qemu.stderr"
  fi
}
if [ -f "$KO_XZ" ]; then
  boot_and_load
else
  fail "boot: there is no acpi_call.ko.xz to load"
fi

finish
