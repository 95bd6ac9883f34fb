#!/usr/bin/env bash
# The main job, safe to try: one kmodsync pass over real Debian module sources and real
# Debian kernel headers, in a throwaway root (nothing outside it is written), then a
# second pass that finds everything done, then the status matrix.
#
# Usage: scripts/demo.sh [--keep]      keep the throwaway root afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
keep=no
[ "${1:-}" = --keep ] && keep=yes

bash scripts/install-deps.sh test
bash scripts/build.sh >/dev/null

kernels=(6.1.0-55-amd64 6.12.107+deb12-amd64)
packages=(v4l2loopback-dkms acpi-call-dkms vpoll-dkms openrazer-driver-dkms lime-forensics-dkms
          bbswitch-dkms tp-smapi-dkms dm-writeboost-dkms evdi-dkms xtables-addons-dkms)
work=$(mktemp -d /tmp/kmodsync-demo.XXXXXX)
chmod 755 "$work" # builds run as an unprivileged user, who must reach the root inside
root=$work/root
cleanup() { [ $keep = yes ] && echo "root kept: $root" || rm -rf "$work"; }
trap cleanup EXIT

echo "== fetching ${#packages[@]} real *-dkms packages (their maintainer scripts are not run)"
mkdir -p "$work/debs" "$work/stage" "$root/usr/src" "$root/usr/lib/modules"
ln -s usr/lib "$root/lib"
(cd "$work/debs" && apt-get download "${packages[@]}" >/dev/null 2>&1)
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/stage"; done
cp -a "$work/stage/usr/src/." "$root/usr/src/"
for kv in "${kernels[@]}"; do
  mkdir -p "$root/usr/lib/modules/$kv"
  ln -s "/usr/src/linux-headers-$kv" "$root/usr/lib/modules/$kv/build"
done

echo "== first pass: $root"
time ./build/core/kmodsync --root "$root" sync || true
echo "== second pass (nothing changed)"
time ./build/core/kmodsync --root "$root" sync >/dev/null || true
echo "== status"
./build/core/kmodsync --root "$root" status
echo "== installed modules"
(cd "$root" && find usr/lib/modules -name '*.ko' | sort)
