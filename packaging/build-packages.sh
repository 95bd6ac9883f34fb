#!/usr/bin/env bash
# Builds kmodsync's packages from this work tree (committed or not; build*/ and .git left
# out): a Debian .deb (packaging/debian, dpkg-buildpackage), an rpm (packaging/rpm/
# kmodsync.spec, rpmbuild) and an Arch package (packaging/arch/PKGBUILD, makepkg).
# Usage: packaging/build-packages.sh [-o OUT_DIR] [-j JOBS] [-F] [-k] [deb] [rpm] [arch]
#   FORMATs: any of deb, rpm, arch (default: all three), built one after the other.
#   -o  where the packages and build logs go (default: ./packages); -j  parallel compile
#   jobs (default: the number of CPUs); -k  keep the temporary build directory;
#   -F  fast, for tests (which test the packaging, not the optimiser): -O1 and no debug
#       information (no -dbgsym/-debuginfo package), through each tool's own knob, and a
#       CMake unity build (-DCMAKE_UNITY_BUILD=ON): a third of the compile time. A format
#       whose unity build fails is built again without it.
# Prints each package's path, one per line. Every build compiles with the tests off.
# On a host that is not rpm- or pacman-based (Debian), rpmbuild and makepkg run with
# --nodeps: their build dependencies are installed, but as Debian packages. makepkg runs
# as nobody when started as root (makepkg refuses root).
set -euo pipefail

usage() { echo "usage: $0 [-o OUT_DIR] [-j JOBS] [-F] [-k] [deb] [rpm] [arch]" >&2; exit 2; }
die() { echo "build-packages: $*" >&2; exit 1; }

source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$PWD/packages
jobs=$(nproc)
keep=0
fast=0
cmake_args=
while getopts o:j:Fkh option; do
  case $option in
    o) out=$OPTARG ;;
    j) jobs=$OPTARG ;;
    F) fast=1 ;;
    k) keep=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(deb rpm arch)
for format in "${formats[@]}"; do
  case $format in deb | rpm | arch) ;; *) echo "build-packages: unknown format '$format'" >&2; usage ;; esac
done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "-j needs a positive number, not '$jobs'"
mkdir -p "$out/logs"
out=$(realpath "$out")

# --- one version everywhere ---------------------------------------------------------------
version=$(sed -nE 's/^project\(kmodsync VERSION ([0-9.]+).*/\1/p' "$source_dir/CMakeLists.txt")
[ -n "$version" ] || die "no 'project(kmodsync VERSION x.y.z' line in $source_dir/CMakeLists.txt"
deb_version=$(sed -nE '1s/^kmodsync \(([^)-]+)-[^)]*\).*/\1/p' "$source_dir/packaging/debian/changelog")
rpm_version=$(sed -nE 's/^Version:[[:space:]]+//p' "$source_dir/packaging/rpm/kmodsync.spec")
arch_version=$(sed -nE 's/^pkgver=//p' "$source_dir/packaging/arch/PKGBUILD")
[ "$deb_version" = "$version" ] || die "packaging/debian/changelog's first entry is '$deb_version', CMakeLists.txt says $version"
[ "$rpm_version" = "$version" ] || die "packaging/rpm/kmodsync.spec says Version '$rpm_version', CMakeLists.txt says $version"
[ "$arch_version" = "$version" ] || die "packaging/arch/PKGBUILD says pkgver '$arch_version', CMakeLists.txt says $version"

tmp=$(mktemp -d /tmp/kmodsync-packages.XXXXXX)
if [ "$keep" = 1 ]; then
  echo "build-packages: build directory kept: $tmp" >&2
else
  trap 'rm -rf "$tmp"' EXIT
fi
chmod 755 "$tmp"

# --- the source tarball: the work tree as it is -------------------------------------------
# git's view when there is one (tracked and untracked files, not the ignored build
# directories), else every file; build*/ and .git never.
tarball=$tmp/kmodsync-$version.tar.gz
(
  cd "$source_dir"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . -mindepth 1 \( -name .git -o -path './build*' \) -prune -o \( -type f -o -type l \) -printf '%P\0'
  fi | while IFS= read -r -d '' file; do
    case $file in build*/* | .git/*) continue ;; esac
    # Deleted but not yet committed: not part of the tree.
    [ -e "$file" ] || [ -L "$file" ] && printf '%s\0' "$file"
  done | tar --create --gzip --file "$tarball" --owner=0 --group=0 --mtime=@0 --sort=name \
    --transform "s|^|kmodsync-$version/|" --no-recursion --null --files-from -
) || die "could not make $tarball from $source_dir"

# run_logged LOG COMMAND...: COMMAND's output in LOG; on failure its tail and the log's name.
run_logged() {
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "failed: $* (whole log: $log)"
  fi
}

build_deb() {
  local dir=$tmp/deb log=$out/logs/deb.log
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$tarball" -C "$dir"
  cp "$tarball" "$dir/kmodsync_$version.orig.tar.gz"
  cp -a "$dir/kmodsync-$version/packaging/debian" "$dir/kmodsync-$version/debian"
  command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage is missing (apt-get install dpkg-dev debhelper)"
  local fast_env=()
  # dpkg-buildflags' own overrides: -g -O2 out, -O1 in; the hardening flags stay.
  [ "$fast" = 0 ] || fast_env=(DEB_CFLAGS_STRIP="-g -O2" DEB_CXXFLAGS_STRIP="-g -O2"
    DEB_CFLAGS_APPEND=-O1 DEB_CXXFLAGS_APPEND=-O1)
  (cd "$dir/kmodsync-$version" && run_logged "$log" env DEB_BUILD_OPTIONS="nocheck parallel=$jobs" \
    "${fast_env[@]}" KMODSYNC_CMAKE_ARGS="$cmake_args" dpkg-buildpackage -b -us -uc -j"$jobs")
  local package found=0
  for package in "$dir"/*.deb "$dir"/*.ddeb; do
    [ -e "$package" ] || continue
    cp "$package" "$out/"
    echo "$out/$(basename "$package")"
    found=1
  done
  [ "$found" = 1 ] || die "dpkg-buildpackage made no .deb (see $log)"
}

build_rpm() {
  local top=$tmp/rpm log=$out/logs/rpm.log nodeps=() db
  command -v rpmbuild >/dev/null || die "rpmbuild is missing (apt-get install rpm)"
  rm -rf "$top"
  mkdir -p "$top/SOURCES" "$top/home"
  cp "$tarball" "$top/SOURCES/"
  # HOME: no ~/.rpmmacros of the user's changes the build. A host whose rpm has no
  # database (Debian's %_dbpath is ~/.rpmdb) cannot check BuildRequires: --nodeps, and a
  # database path of ours, so that nothing is created in the user's home.
  db=$(HOME=$top/home rpm --eval '%{_dbpath}')
  if ! compgen -G "$db/rpmdb.sqlite" >/dev/null && ! compgen -G "$db/Packages*" >/dev/null; then
    nodeps=(--nodeps --define "_dbpath $top/rpmdb")
  fi
  local fast_defines=()
  [ "$fast" = 0 ] || fast_defines=(--define "optflags -O1" --define "debug_package %{nil}")
  [ -z "$cmake_args" ] || fast_defines+=(--define "kmodsync_cmake_args $cmake_args")
  run_logged "$log" env HOME="$top/home" rpmbuild -bb "${nodeps[@]}" "${fast_defines[@]}" --define "_topdir $top" \
    --define "_smp_mflags -j$jobs" "$source_dir/packaging/rpm/kmodsync.spec"
  local package found=0
  while IFS= read -r -d '' package; do
    cp "$package" "$out/"
    echo "$out/$(basename "$package")"
    found=1
  done < <(find "$top/RPMS" -name '*.rpm' -print0 | sort -z)
  [ "$found" = 1 ] || die "rpmbuild made no .rpm (see $log)"
}

build_arch() {
  local dir=$tmp/arch log=$out/logs/arch.log nodeps=() runas=() flags=()
  command -v makepkg >/dev/null || die "makepkg is missing (apt-get install makepkg pacman-package-manager)"
  rm -rf "$dir"
  mkdir -p "$dir/out"
  cp "$source_dir/packaging/arch/PKGBUILD" "$tarball" "$dir/"
  pacman -Q glibc >/dev/null 2>&1 || nodeps=(--nodeps)
  if [ "$(id -u)" -eq 0 ]; then
    chown -R nobody:nogroup "$dir"
    runas=(runuser -u nobody --)
  fi
  # Debian's /etc/makepkg.conf sets no compiler flags (Arch's sets -O2 and hardening):
  # without any, CMAKE_BUILD_TYPE=None would compile without optimisation.
  # -F: the same with -O1 (makepkg's debug option is off by default).
  local level=-O2
  [ "$fast" = 0 ] || level=-O1
  if ! grep -Eq '^[[:space:]]*CXXFLAGS=' /etc/makepkg.conf 2>/dev/null; then
    flags=(CFLAGS="$level -pipe -fno-plt -fstack-protector-strong -D_FORTIFY_SOURCE=2"
      CXXFLAGS="$level -pipe -fno-plt -fstack-protector-strong -D_FORTIFY_SOURCE=2 -Wp,-D_GLIBCXX_ASSERTIONS"
      LDFLAGS="-Wl,-O1,--sort-common,--as-needed,-z,relro,-z,now")
  elif [ "$fast" = 1 ]; then
    # The host's flags with its -O level replaced, read the way makepkg reads them.
    flags=(CXXFLAGS="$(bash -c 'source /etc/makepkg.conf; echo "$CXXFLAGS"' | sed -E 's/(^| )-O[0-9s]( |$)/ /g') -O1")
  fi
  # PACMAN=true: makepkg lists the installed packages with pacman -Q for .BUILDINFO, and a
  # host without a pacman database has none.
  [ ${#nodeps[@]} -eq 0 ] || flags+=(PACMAN=true)
  (cd "$dir" && run_logged "$log" "${runas[@]}" env -i PATH=/usr/bin:/bin HOME="$dir" LANG=C.UTF-8 \
    MAKEFLAGS="-j$jobs" KMODSYNC_CMAKE_ARGS="$cmake_args" PKGEXT=.pkg.tar.zst PKGDEST="$dir/out" BUILDDIR="$dir/build" SRCDEST="$dir" \
    "${flags[@]}" makepkg "${nodeps[@]}" --noconfirm --nocolor)
  local package found=0
  for package in "$dir"/out/*.pkg.tar.zst; do
    [ -e "$package" ] || continue
    cp "$package" "$out/"
    echo "$out/$(basename "$package")"
    found=1
  done
  [ "$found" = 1 ] || die "makepkg made no package (see $log)"
}

# build FORMAT: build_FORMAT in a subshell, so that its failure ends it and not the loop;
# BUILD_STATUS is its exit status. (Not under if or ||, where bash ignores set -e.)
build() {
  set +e
  (set -e; "build_$1")
  BUILD_STATUS=$?
  set -e
}
for format in "${formats[@]}"; do
  if [ "$fast" = 1 ]; then
    cmake_args=-DCMAKE_UNITY_BUILD=ON
    build "$format"
    [ "$BUILD_STATUS" != 0 ] || continue
    mv "$out/logs/$format.log" "$out/logs/$format-unity.log"
    echo "build-packages: the unity build of the $format package failed (log: $out/logs/$format-unity.log);" \
      "building it again without" >&2
  fi
  cmake_args=
  build "$format"
  [ "$BUILD_STATUS" = 0 ] || exit 1
done
