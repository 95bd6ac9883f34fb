#!/usr/bin/env bash
# Builds a binary .deb of kmodsync that replaces Debian's dkms package: existing *-dkms
# packages depend on dkms and call `dkms` and /usr/lib/dkms/common.postinst from their
# maintainer scripts, which the install provides (/usr/sbin/dkms -> ../bin/kmodsync).
# Usage: packaging/deb/make-dropin-deb.sh BUILD_DIR OUT_DIR   (prints the .deb's path)
# A stopgap until the debian/ source package: no changelog, no copyright, no dbgsym.
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR OUT_DIR}
out=${2:?usage: $0 BUILD_DIR OUT_DIR}
build=$(realpath "$build")
mkdir -p "$out"
out=$(realpath "$out")

version=$("$build/core/kmodsync" --version | awk '{print $NF}')
[ -n "$version" ] || { echo "make-dropin-deb: no version from $build/core/kmodsync --version" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# dpkg-shlibdeps wants a debian/control and the files in debian/PACKAGE.
stage=$tmp/debian/kmodsync
mkdir -p "$stage/DEBIAN"
touch "$tmp/debian/control"
DESTDIR=$stage cmake --install "$build" --prefix /usr --strip >/dev/null
# Debian's package carries the apt and /etc/kernel triggers, not rpm's or pacman's.
rm -rf "$stage/usr/lib64/rpm-plugins" "$stage/usr/lib/rpm" "$stage/usr/share/libalpm" \
  "$stage/usr/lib/kmodsync/kmodsync-pacman-hook"
rmdir "$stage/usr/lib64" 2>/dev/null || true

shlibs=$(cd "$tmp" && dpkg-shlibdeps -O "$stage/usr/bin/kmodsync" \
  $(find "$stage/usr/lib/kmodsync" -type f -perm -u+x 2>/dev/null) 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "make-dropin-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

# The version the *-dkms packages of Debian 12 require: dkms (>= 2.1.0.0) (v4l2loopback-dkms)
# or dkms (>= 3.0.3-4~) (dh_dkms of 3.0.x); kmodsync behaves as this DKMS.
cat >"$stage/DEBIAN/control" <<EOF
Package: kmodsync
Version: $version
Architecture: amd64
Maintainer: kmodsync developers <kmodsync@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $shlibs, bash, make, gcc | c-compiler, kmod, patch, libc6-dev
Provides: dkms (= 3.0.10-8+deb12u1)
Conflicts: dkms
Replaces: dkms
Section: kernel
Priority: optional
Description: keeps out-of-tree kernel modules in step with the installed kernels
 kmodsync builds the modules of *-dkms packages (their dkms.conf in /usr/src) for every
 installed kernel in one parallel pass. It is installed as dkms and provides
 /usr/lib/dkms/common.postinst, so existing *-dkms packages work unchanged.
EOF
(cd "$stage" && find usr -type f -exec md5sum {} + | sort -k2 >DEBIAN/md5sums)
# The hooks under /etc are the admin's to change: conffiles, kept on upgrade, gone on purge.
(cd "$stage" && find etc -type f | sed 's|^|/|' | sort >DEBIAN/conffiles)

deb=$out/kmodsync_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz -z6 --build "$stage" "$deb" >/dev/null
echo "$deb"
