#!/usr/bin/env bash
# boot.sh OUTDIR VMLINUZ MODULE...: boots VMLINUZ under qemu (software emulation) with a
# busybox initramfs whose /init loads each MODULE, in order, through finit_module(2) (the
# kernel decompresses .ko.xz itself), prints /proc/modules and the kernel's messages, and
# powers off. Writes OUTDIR/console.log (the serial console, \r stripped) and OUTDIR/nonce
# (the marker its lines carry: "@@KMODSYNC-<nonce>@@ ..."). Exits with qemu's status
# (124 when `timeout` stopped it). Usable by hand:
#   tests/integration/qemu/boot.sh /tmp/q /boot/vmlinuz-KV path/to/module.ko.xz
# Environment: KMODSYNC_QEMU_TIMEOUT (seconds, default 120), BUSYBOX (default: the busybox
# on PATH, which must be static: Debian's busybox-static).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: boot.sh OUTDIR VMLINUZ MODULE...}
vmlinuz=${2:?usage: boot.sh OUTDIR VMLINUZ MODULE...}
shift 2
[ $# -gt 0 ] || { echo "boot.sh: no module given" >&2; exit 2; }
busybox=${BUSYBOX:-$(command -v busybox)}
if readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
  echo "boot.sh: $busybox is dynamically linked; install busybox-static" >&2
  exit 2
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
ramfs=$out/initramfs
rm -rf "$ramfs"
mkdir -p "$ramfs/bin" "$ramfs/modules" "$ramfs/proc" "$ramfs/sys" "$ramfs/dev"
cp "$busybox" "$ramfs/bin/busybox"
for applet in sh mount mkdir cat echo grep dmesg poweroff sleep ls; do
  ln -s busybox "$ramfs/bin/$applet"
done
gcc -static -O2 -Wall -Werror -o "$ramfs/bin/finit_module" "$here/finit_module.c"
cp "$here/init" "$ramfs/init"
chmod 0755 "$ramfs/init"
od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$ramfs/nonce"
cp "$ramfs/nonce" "$out/nonce"
: >"$ramfs/modules/ORDER"
for module in "$@"; do
  cp "$module" "$ramfs/modules/"
  basename "$module" >>"$ramfs/modules/ORDER"
done
# /dev/console comes from the kernel's built-in initramfs, which this one is unpacked over.
(cd "$ramfs" && find . -print0 | LC_ALL=C sort -z \
  | cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -9n >"$out/initrd.gz"

status=0
timeout "${KMODSYNC_QEMU_TIMEOUT:-120}" qemu-system-x86_64 \
  -accel tcg -cpu max -m 512 -smp 1 -nographic -no-reboot -nic none \
  -kernel "$vmlinuz" -initrd "$out/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet" \
  </dev/null 2>"$out/qemu.stderr" | tr -d '\r' >"$out/console.log" || status=$?
exit "$status"
