#!/usr/bin/env bash
# Installs what kmodsync needs to build and what its tests use, from Debian 12's archive.
# Usage: scripts/install-deps.sh [build|test|bench]   (each includes the ones before it)
set -euo pipefail

level=${1:-test}
build_packages=(
  cmake g++ make pkg-config
  libfmt-dev doctest-dev libkmod-dev libcli11-dev nlohmann-json3-dev libssl-dev
  liblzma-dev libzstd-dev zlib1g-dev libarchive-dev libcurl4-openssl-dev librpm-dev libapt-pkg-dev
)
runtime_packages=(bash kmod binutils patch gcc-12)
# The real kernels the tests and the demo build against (pinned: see TESTING.md).
# dkms itself is the reference the tests compare against (tests/integration/test_matches_dkms.sh).
# qemu, busybox and the 6.12 image boot a module kmodsync built (tests/integration/test_qemu_boot.sh).
# debootstrap, rpm/dnf/createrepo-c, dpkg-dev, pacman/makepkg: the real package-manager
# transactions of the trigger suites (test_dkms_packages, test_rpm_plugin, test_apt_hooks,
# test_pacman_hooks); debhelper (dh, with dpkg-dev, rpm's rpmbuild and makepkg) builds
# kmodsync's own packages, installed by test_packages; systemd's kernel-install for
# test_kernel_install; nginx (WebDAV PUT)
# is the remote build cache of test_remote_cache. clang-16 with its compiler-rt (libFuzzer,
# ASan, UBSan) and llvm-16 (llvm-symbolizer) build and run the fuzz targets (scripts/fuzz.sh):
# clang 14, bookworm's default, cannot compile libstdc++ 12's std::expected.
# mandoc, groff-base, bash-completion and zsh check the man page and the completions (test_docs).
test_packages=(jq dkms linux-headers-6.1.0-55-amd64 linux-headers-6.12.107+deb12-amd64
               linux-image-6.12.107+deb12-amd64 qemu-system-x86 busybox-static xz-utils zstd
               openssl cpio libc6-dev debootstrap rpm dnf createrepo-c dpkg-dev
               pacman-package-manager makepkg libarchive-tools fakeroot debhelper systemd nginx-light
               clang-16 libclang-rt-16-dev llvm-16
               mandoc groff-base bash-completion zsh)
bench_packages=(time)

packages=("${build_packages[@]}" "${runtime_packages[@]}")
case $level in
  build) ;;
  test) packages+=("${test_packages[@]}") ;;
  bench) packages+=("${test_packages[@]}" "${bench_packages[@]}") ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packages with services (nginx) must not start them here: the tests run their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
