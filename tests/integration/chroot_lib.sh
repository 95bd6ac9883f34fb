# A throwaway Debian 12 chroot (debootstrap --variant=minbase) for the suites that run real
# apt-get and dpkg with real Debian packages: create it, run commands in it, keep its logs,
# tear it down. Source lib.sh first, then set, before sourcing this file:
#   R          the chroot's directory (created by chroot_create)
#   LOGS       where its logs go (kept in the work directory when the suite fails)
#   CHROOT_KEEP=1     keep the chroot after the suite (default 0)
#   CHROOT_TMPFS=0|1  on a tmpfs or on disk (default: a tmpfs when there is memory for it)
#   CHROOT_SAVED_LOGS extra files under R to copy into LOGS/root at teardown (an array)
# Sourcing it installs the EXIT trap that tears the chroot down.
# KMODSYNC_DEBIAN_MIRROR and KMODSYNC_DEBIAN_SECURITY_MIRROR choose the mirrors; .debs
# apt-get downloaded are kept in $CORPUS_DIR/chroot-apt for the next run.
# shellcheck shell=bash

MIRROR=${KMODSYNC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${KMODSYNC_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
APT_CACHE=$CORPUS_DIR/chroot-apt
DEBOOTSTRAP_CACHE=$CORPUS_DIR/debootstrap
CHROOT_KEEP=${CHROOT_KEEP:-0}
: "${R:?set R before sourcing chroot_lib.sh}" "${LOGS:?set LOGS before sourcing chroot_lib.sh}"
[ -n "${CHROOT_SAVED_LOGS+set}" ] || CHROOT_SAVED_LOGS=()
mkdir -p "$LOGS" "$APT_CACHE" "$DEBOOTSTRAP_CACHE"

# phase NAME: ends the previous phase's clock (into TIMINGS) and prints a header.
TIMINGS=()
SUITE_START=$(date +%s)
PHASE_START=$SUITE_START
phase() {
  local now
  now=$(date +%s)
  [ -n "${PHASE_NAME:-}" ] && TIMINGS+=("$PHASE_NAME: $((now - PHASE_START)) s")
  PHASE_NAME=$1
  PHASE_START=$now
  [ -n "$1" ] && echo "== $1"
}

# in_root COMMAND...: runs COMMAND in the chroot with a clean environment (no MAKEFLAGS
# from ctest, no KMODSYNC_*). INITRD=No makes the kernel's postinst.d hook skip building an
# initramfs (20 s here; no module of these tests is in one).
in_root() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
    DEBIAN_FRONTEND=noninteractive INITRD=No chroot "$R" "$@"
}

# chroot_create DIR: a minimal Debian 12 with bookworm, -updates and -security (where the
# pinned kernel headers are, as on the host), services blocked, /proc mounted. On a tmpfs
# when there is memory for it (about 1.5 GB; dpkg's fsyncs and removing the tree cost
# tens of seconds on disk), else on disk; CHROOT_TMPFS=0|1 decides.
chroot_create() {
  local dir=$1 available_kb
  mkdir -p "$dir"
  available_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  if [ "${CHROOT_TMPFS:-$([ "${available_kb:-0}" -ge 6000000 ] && echo 1 || echo 0)}" = 1 ]; then
    mount -t tmpfs -o size=4g,mode=755 kmodsync-test-root "$dir" || return 1
  fi
  debootstrap --variant=minbase --cache-dir="$DEBOOTSTRAP_CACHE" bookworm "$dir" "$MIRROR" \
    >"$LOGS/debootstrap.log" 2>&1 || return 1
  cat >"$dir/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
  cat >"$dir/etc/apt/apt.conf.d/90kmodsync-test" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Use-Pty "false";
Acquire::Retries "3";
EOF
  echo force-unsafe-io >"$dir/etc/dpkg/dpkg.cfg.d/90kmodsync-test"
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
  mount -t proc proc "$dir/proc" || return 1
  # Seed apt's archive cache from earlier runs (hard links; a copy across file systems).
  cp -l -n "$APT_CACHE"/*.deb "$dir/var/cache/apt/archives/" 2>/dev/null \
    || cp -n "$APT_CACHE"/*.deb "$dir/var/cache/apt/archives/" 2>/dev/null
  return 0
}

save_apt_cache() {
  cp -l -n "$R"/var/cache/apt/archives/*.deb "$APT_CACHE/" 2>/dev/null \
    || cp -n "$R"/var/cache/apt/archives/*.deb "$APT_CACHE/" 2>/dev/null
  return 0
}

# mounts_under DIR: mount points at or below DIR, deepest first.
mounts_under() {
  findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | sort -r
}

# chroot_teardown: ends what is still running in the chroot (by pid), unmounts everything
# below it, keeps its logs, removes it. Runs from the EXIT trap too; idempotent.
TORN_DOWN=0
chroot_teardown() {
  [ "$TORN_DOWN" = 0 ] && [ -d "$R" ] || return 0
  local pid root mount file
  for pid in /proc/[0-9]*; do
    root=$(readlink "$pid/root" 2>/dev/null) || continue
    if [ "$root" = "$R" ]; then kill -9 "${pid#/proc/}" 2>/dev/null; fi
  done
  for mount in $(mounts_under "$R"); do
    [ "$mount" = "$R" ] && continue
    umount "$mount" 2>/dev/null || umount -l "$mount"
  done
  mkdir -p "$LOGS/root"
  for file in /var/log/dpkg.log /var/log/apt /var/lib/kmodsync "${CHROOT_SAVED_LOGS[@]}"; do
    cp -a "$R$file" "$LOGS/root/" 2>/dev/null
  done
  TORN_DOWN=1
  if [ "$CHROOT_KEEP" = 1 ]; then
    echo "$SUITE: chroot kept: $R$(mountpoint -q "$R" && echo " (a tmpfs: umount it when done)")"
    return 0
  fi
  if mountpoint -q "$R"; then umount "$R" 2>/dev/null || umount -l "$R"; fi
  if [ -n "$(mounts_under "$R")" ]; then
    echo "$SUITE: FAIL: still mounted under $R; not removing it" >&2
    FAILED=$((FAILED + 1))
    trap - EXIT
    exit 1
  fi
  rm -rf --one-file-system "$R"
}
trap chroot_teardown EXIT
trap 'exit 130' INT TERM

# unconfigured: the packages dpkg holds neither installed nor absent (a failed postinst
# leaves them half-configured).
unconfigured() {
  in_root dpkg-query -W -f='${Package} ${db:Status-Status}\n' \
    | awk '$2 != "installed" && $2 != "not-installed" && $2 != "config-files" {print $1}' | sort | xargs
}

# chroot_apt_get ARGS...: apt-get -q -y ARGS in the chroot, its output in a new log
# (APT_LOG), its status in APT_RC; apt's downloads are kept for the next run.
APT_STEP=0
chroot_apt_get() {
  APT_STEP=$((APT_STEP + 1))
  APT_LOG=$LOGS/apt-$APT_STEP.log
  echo "# apt-get $*" >"$APT_LOG"
  in_root apt-get -q -y "$@" >>"$APT_LOG" 2>&1
  APT_RC=$?
  save_apt_cache
  return 0
}

# chroot_debootstrap: chroot_create at R, or else skip the suite (network?); when checks
# before it failed already, the suite fails instead.
chroot_debootstrap() {
  if ! chroot_create "$R"; then
    tail -n 5 "$LOGS/debootstrap.log"
    chroot_teardown
    if [ "$FAILED" -gt 0 ]; then
      fail "debootstrap of bookworm from $MIRROR (network?)"
      finish
      exit
    fi
    skip "debootstrap of bookworm from $MIRROR failed (network?)"
  fi
}

# configure_output PACKAGE: what its postinst printed in the last apt-get's output.
configure_output() {
  awk -v start="Setting up $1 " 'index($0, start) == 1 {on = 1; next}
    /^(Setting up |Processing triggers |Errors were encountered)/ {on = 0} on' "$APT_LOG"
}
