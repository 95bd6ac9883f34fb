#!/usr/bin/env bash
# dkms_vs_kmodsync.sh - benchmark DKMS 3.0.10 against kmodsync on the same
# module sources and the same kernels, in throwaway trees.
#
# Phases, each timed (wall, and CPU = user+sys of all children) for both tools:
#   cold    register every module source and build+install it for every kernel
#   warm    the same command again, nothing changed
#   status  print the module x kernel matrix
#   reinstall  the last kernel removed and installed again: DKMS unbuilds every
#           module for it, then builds as in cold; kmodsync kernel-remove + sync
#           --kernel (its build cache makes this a pass without compiles, and its
#           depmod cache one without depmod: the module tree is the one of before)
#
# Nothing is written to the host's /lib/modules, /var/lib/dkms, /usr/src or
# /boot: all state lives under one mktemp -d directory that is removed at the
# end (keep it with --keep). The script snapshots those host trees before and
# after and reports any difference.
#
# See bench/README.md. Run as root (DKMS insists on it): bench/dkms_vs_kmodsync.sh -h
# The whole script is one { ... } block, so bash parses it completely before
# running it and editing the file during a run cannot derail the run.
{
set -euo pipefail
shopt -s nullglob

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

DEFAULT_KERNELS="6.1.0-55-amd64 6.12.107+deb12-amd64"
DEFAULT_PACKAGES="v4l2loopback-dkms acpi-call-dkms vpoll-dkms bbswitch-dkms tp-smapi-dkms dm-writeboost-dkms lime-forensics-dkms openrazer-driver-dkms evdi-dkms xtables-addons-dkms"

usage() {
    cat <<EOF
usage: $0 [options]
  -j N               parallel jobs, passed to both tools (default: nproc = $(nproc))
  -k KV              kernel release; repeatable (default: \$BENCH_KERNELS or
                     "$DEFAULT_KERNELS")
  -p PKG             Debian *-dkms package; repeatable (default: \$BENCH_PACKAGES or
                     the 10-package corpus)
  --only dkms|kmodsync   run one half only
  --order dkms-first|kmodsync-first   (default: dkms-first)
  --dkms-mode autoinstall|install
                     how DKMS builds: 'autoinstall' = 'dkms autoinstall -k KV' once per
                     kernel (what Debian's kernel hooks run; default); 'install' =
                     'dkms install -m M -v V -k KV' per module per kernel (what a
                     *-dkms package's postinst runs)
  --no-depmod        run DKMS with --no-depmod (default: DKMS runs depmod, redirected into
                     the throwaway tree by a 'depmod' wrapper that adds -b)
  --no-intree        do not copy the host's in-tree modules (/lib/modules/KV/kernel and
                     modules.*) into the throwaway trees (see README)
  --no-sign          no MOK key: neither tool signs (default: one key, given to both)
  --deb-cache DIR    reuse DIR/PKG_*.deb when present (default: \$BENCH_DEB_CACHE or
                     /tmp/corpus); anything missing is fetched with apt-get download
  --keep             keep the temp tree (logs, trees) and print its path
  -h, --help
env: KMODSYNC (binary; default $REPO_DIR/build/kmodsync, else build/core/kmodsync), BENCH_KERNELS,
     BENCH_PACKAGES, BENCH_JOBS, BENCH_DEB_CACHE
EOF
}

die() { echo "bench: error: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- options
JOBS=${BENCH_JOBS:-$(nproc)}
KERNELS=() PACKAGES=()
ONLY="" ORDER="dkms-first" DKMS_MODE="autoinstall"
DKMS_DEPMOD=1 INTREE=1 SIGN=1 KEEP=0
DEB_CACHE=${BENCH_DEB_CACHE:-/tmp/corpus}
if [[ -z ${KMODSYNC:-} ]]; then
    KMODSYNC=$REPO_DIR/build/kmodsync
    [[ -x $KMODSYNC || ! -x $REPO_DIR/build/core/kmodsync ]] || KMODSYNC=$REPO_DIR/build/core/kmodsync
fi

while (($#)); do
    case $1 in
        -j) JOBS=${2:?-j needs a number}; shift ;;
        -j*) JOBS=${1#-j} ;;
        -k) KERNELS+=("${2:?-k needs a kernel release}"); shift ;;
        -p) PACKAGES+=("${2:?-p needs a package}"); shift ;;
        --only) ONLY=${2:?}; shift ;;
        --order) ORDER=${2:?}; shift ;;
        --dkms-mode) DKMS_MODE=${2:?}; shift ;;
        --no-depmod) DKMS_DEPMOD=0 ;;
        --no-intree) INTREE=0 ;;
        --no-sign) SIGN=0 ;;
        --deb-cache) DEB_CACHE=${2:?}; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "-j wants a positive number, got '$JOBS'"
((${#KERNELS[@]})) || read -r -a KERNELS <<<"${BENCH_KERNELS:-$DEFAULT_KERNELS}"
((${#PACKAGES[@]})) || read -r -a PACKAGES <<<"${BENCH_PACKAGES:-$DEFAULT_PACKAGES}"
case $ONLY in ""|dkms|kmodsync) ;; *) die "--only dkms|kmodsync" ;; esac
case $ORDER in dkms-first|kmodsync-first) ;; *) die "--order dkms-first|kmodsync-first" ;; esac
case $DKMS_MODE in autoinstall|install) ;; *) die "--dkms-mode autoinstall|install" ;; esac
[[ $DEB_CACHE == /* ]] || DEB_CACHE=$PWD/$DEB_CACHE
[[ -z ${KMODSYNC:-} || $KMODSYNC == */* ]] || KMODSYNC=$(command -v "$KMODSYNC" || echo "$KMODSYNC")
[[ $KMODSYNC == /* ]] || KMODSYNC=$PWD/$KMODSYNC
[[ $(id -u) = 0 ]] || die "run as root (dkms refuses 'install'/'autoinstall' otherwise)"

# ---------------------------------------------------------------- prerequisites
export DEBIAN_FRONTEND=noninteractive
apt_install() {
    note "apt-get install $*"
    apt-get install -y --no-install-recommends "$@" >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$@" >/dev/null; } ||
        die "apt-get install $* failed"
}
# Headers first, dkms second: installing headers with dkms present would run
# /etc/kernel/header_postinst.d/dkms against the host trees (harmless when
# nothing is registered there, but not needed).
missing_hdrs=()
for k in "${KERNELS[@]}"; do
    [[ -e /usr/src/linux-headers-$k/Makefile || -e /lib/modules/$k/build/Makefile ]] ||
        missing_hdrs+=("linux-headers-$k")
done
((${#missing_hdrs[@]} == 0)) || apt_install "${missing_hdrs[@]}"
# --no-install-recommends: dkms Recommends linux-headers-amd64, which would pull the
# newest kernel's headers onto the host (and a new /lib/modules/KV).
command -v dkms >/dev/null || apt_install dkms
DKMS_VERSION=$(dkms --version 2>/dev/null | head -n1)
[[ $DKMS_VERSION == dkms-3.0.10 ]] || note "warning: expected dkms-3.0.10, found '$DKMS_VERSION'"
for tool in dpkg-deb apt-get depmod modinfo; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
DEPMOD_BIN=$(command -v depmod)
PYTHON=$(command -v /usr/bin/python3 || command -v python3 || true)
command -v openssl >/dev/null || { ((SIGN == 0)) || note "openssl missing: no signing"; SIGN=0; }

HAVE_KS=0
if [[ $ONLY != dkms ]]; then
    if [[ -x $KMODSYNC ]]; then
        HAVE_KS=1
        KMODSYNC=$(readlink -f "$KMODSYNC")
    else
        note "kmodsync binary not found at '$KMODSYNC' (build it with"
        note "  cmake -S $REPO_DIR -B $REPO_DIR/build && cmake --build $REPO_DIR/build"
        note "or set KMODSYNC=/path/to/kmodsync): the kmodsync half is SKIPPED"
    fi
fi
RUN_DKMS=1; [[ $ONLY == kmodsync ]] && RUN_DKMS=0
RUN_KS=$HAVE_KS; [[ $ONLY == dkms ]] && RUN_KS=0
((RUN_DKMS || RUN_KS)) || die "nothing to run"

# ---------------------------------------------------------------- host snapshot
HOST_WATCH=(/lib/modules /usr/lib/modules /var/lib/dkms /var/lib/kmodsync /usr/src /boot /etc/dkms)
host_snapshot() {
    local p existing=()
    for p in "${HOST_WATCH[@]}"; do [[ -e $p ]] && existing+=("$p"); done
    find "${existing[@]}" -printf '%p|%y|%s|%T@|%l\n' 2>/dev/null | LC_ALL=C sort || true
}

# ---------------------------------------------------------------- temp tree
T=$(mktemp -d "${TMPDIR:-/tmp}/kmodsync-bench.XXXXXXXX")
chmod 755 "$T" # kmodsync builds as an unprivileged user, who must reach the root inside
T=$(readlink -f "$T")     # DKMS compares canonical paths (add_source_tree)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # wait for anything we started (a killed run may leave make children)
    wait 2>/dev/null || true
    if ((KEEP)); then
        note "kept $T"
    elif [[ -n ${T:-} && -d $T && $T == */kmodsync-bench.* ]]; then
        rm -rf --one-file-system -- "$T"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$T"    # nothing we run may drop files in the caller's directory
LOG=$T/logs
mkdir -p "$LOG" "$T/debs" "$T/extract" "$T/tmp" "$T/bin" "$T/srcs"
host_snapshot >"$T/host.before"

# ---------------------------------------------------------------- module sources
note "module sources: ${PACKAGES[*]}"
for pkg in "${PACKAGES[@]}"; do
    deb=""
    if [[ -d $DEB_CACHE ]]; then
        cands=("$DEB_CACHE/${pkg}"_*.deb)
        ((${#cands[@]})) && deb=$(printf '%s\n' "${cands[@]}" | sort -V | tail -n1)
    fi
    if [[ -z $deb ]]; then
        (cd "$T/debs" && apt-get download "$pkg" >"$LOG/download-$pkg.log" 2>&1) ||
            { cat "$LOG/download-$pkg.log" >&2; die "apt-get download $pkg failed"; }
        cands=("$T/debs/${pkg}"_*.deb)
        ((${#cands[@]})) || die "apt-get download $pkg left no .deb"
        deb=${cands[0]}
    fi
    mkdir -p "$T/extract/$pkg"
    dpkg-deb -x "$deb" "$T/extract/$pkg"
    found=0
    for conf in "$T/extract/$pkg"/usr/src/*/dkms.conf; do
        d=$(dirname "$conf")
        [[ -e $T/srcs/${d##*/} ]] && die "two packages ship /usr/src/${d##*/}"
        cp -a "$d" "$T/srcs/"
        found=1
    done
    ((found)) || die "$pkg ships no /usr/src/*/dkms.conf"
    echo "$pkg ${deb##*/}" >>"$T/packages.txt"
done
SRC_DIRS=("$T/srcs"/*)

# Kernel headers: what the build link resolves to.
declare -A HDR=()
for k in "${KERNELS[@]}"; do
    h=""
    [[ -e /lib/modules/$k/build/Makefile ]] && h=$(readlink -f "/lib/modules/$k/build")
    [[ -z $h && -e /usr/src/linux-headers-$k/Makefile ]] && h=/usr/src/linux-headers-$k
    [[ -n $h ]] || die "no kernel headers for $k"
    HDR[$k]=$h
done

# Evaluate a dkms.conf the way DKMS does (bash, DKMS's variables set), print
# NAME|VERSION|AUTOINSTALL. $1 conf, $2 kernel, $3 dkms_tree, $4 source_tree
eval_conf() {
    env -i PATH="$PATH" kernelver="$2" arch="$(uname -m)" kernel_source_dir="${HDR[$2]}" \
        dkms_tree="$3" source_tree="$4" \
        timeout 20 bash -c 'cd "$(dirname "$0")" && . "$0" </dev/null >/dev/null 2>&1;
            printf "%s|%s|%s\n" "$PACKAGE_NAME" "$PACKAGE_VERSION" "$AUTOINSTALL"' "$1" ||
        echo "||"
}
declare -A MOD_OF_DIR=()   # src dir name -> NAME/VERSION
MODS=()
for d in "${SRC_DIRS[@]}"; do
    IFS='|' read -r n v _ < <(eval_conf "$d/dkms.conf" "${KERNELS[0]}" "$T/dkms/tree" "$T/dkms/src")
    [[ -n $n && -n $v ]] || die "cannot read PACKAGE_NAME/PACKAGE_VERSION from $d/dkms.conf"
    [[ ${d##*/} == "$n-$v" ]] || note "warning: ${d##*/} is not NAME-VERSION ($n-$v)"
    MOD_OF_DIR[${d##*/}]="$n/$v"
    MODS+=("$n/$v")
done
NCELLS=$(( ${#MODS[@]} * ${#KERNELS[@]} ))

# ---------------------------------------------------------------- trees
# One MOK key for both tools (DKMS would otherwise generate one at the
# hard-coded /var/lib/dkms/mok.key on the host, whatever --dkmstree says).
if ((SIGN)); then
    openssl req -new -x509 -nodes -days 36500 -subj "/CN=DKMS module signing key" \
        -newkey rsa:2048 -keyout "$T/mok.key" -outform DER -out "$T/mok.pub" >/dev/null 2>&1 ||
        die "openssl could not make a key"
fi

# Copy of a host kernel's own modules dir (kernel/, modules.*) so both tools see
# what the real system has: DKMS decides compression from the host's
# /lib/modules/KV/modules.dep whatever --installtree says, depmod has real work.
populate_kernel_dir() { # $1 kernel, $2 destination /lib/modules/KV
    local k=$1 dst=$2 f
    mkdir -p "$dst"
    if ((INTREE)) && [[ -f /lib/modules/$k/modules.dep ]]; then
        [[ -d /lib/modules/$k/kernel ]] && cp -a "/lib/modules/$k/kernel" "$dst/"
        for f in /lib/modules/"$k"/modules.*; do cp -a "$f" "$dst/"; done
    fi
}

# DKMS: --dkmstree DT --sourcetree DS --installtree DR/lib/modules
DT=$T/dkms/tree DS=$T/dkms/src DR=$T/dkms/root
DKMS_IT=$DR/lib/modules
if ((RUN_DKMS)); then
    mkdir -p "$DT" "$DS" "$DKMS_IT"
    cp -a "${SRC_DIRS[@]}" "$DS/"
    for k in "${KERNELS[@]}"; do
        populate_kernel_dir "$k" "$DKMS_IT/$k"
        ln -s "${HDR[$k]}" "$DKMS_IT/$k/build"   # not used by DKMS (see --kernelsourcedir), for symmetry
    done
    if ((SIGN)); then cp "$T/mok.key" "$T/mok.pub" "$DT/"; fi
    # depmod wrapper: DKMS runs plain 'depmod -a KV' (host /lib/modules) after every
    # install; dkms appends /usr/lib/dkms to PATH, so a wrapper first on PATH wins.
    cat >"$T/bin/depmod" <<EOF
#!/bin/sh
echo "\$*" >>"$T/dkms/depmod.calls"
exec "$DEPMOD_BIN" -b "$DR" "\$@"
EOF
    chmod +x "$T/bin/depmod"
    : >"$T/dkms/depmod.calls"
fi

# kmodsync: root R with R/usr/src/NAME-VER, R/usr/lib/modules/KV/build -> headers, R/lib -> usr/lib
R=$T/ks/root
if ((RUN_KS)); then
    mkdir -p "$R/usr/src" "$R/usr/lib/modules" "$R/var/lib" "$R/etc"
    ln -s usr/lib "$R/lib"
    cp -a "${SRC_DIRS[@]}" "$R/usr/src/"
    for k in "${KERNELS[@]}"; do
        populate_kernel_dir "$k" "$R/usr/lib/modules/$k"
        ln -s "${HDR[$k]}" "$R/usr/lib/modules/$k/build"
    done
    if ((SIGN)); then
        # DKMS's default key location, inside the root
        mkdir -p "$R/var/lib/dkms" "$R/etc/dkms"
        cp "$T/mok.key" "$T/mok.pub" "$R/var/lib/dkms/"
        # and say so where DKMS users say so (paths as seen inside the root)
        printf 'mok_signing_key="/var/lib/dkms/mok.key"\nmok_certificate="/var/lib/dkms/mok.pub"\n' \
            >"$R/etc/dkms/framework.conf"
    fi
fi

# ---------------------------------------------------------------- commands
DKMS_BASE=(dkms --dkmstree "$DT" --sourcetree "$DS" --installtree "$DKMS_IT")
DKMS_BUILD_OPTS=(-j "$JOBS")
((DKMS_DEPMOD)) || DKMS_BUILD_OPTS+=(--no-depmod)
# Signing: DKMS reads sign_file/mok_signing_key/mok_certificate from framework.conf
# and, as they are never reset, from the environment. Unset, the key is
# /var/lib/dkms/mok.key ON THE HOST (generated there if missing), whatever
# --dkmstree says. So always point the key into T; --no-sign also names a
# sign-file that does not exist, which makes DKMS skip signing.
dkms_env=(env PATH="$T/bin:$PATH" TMPDIR="$T/tmp" mok_signing_key="$DT/mok.key" mok_certificate="$DT/mok.pub")
((SIGN)) || dkms_env+=(sign_file="$T/no-sign-file")
run_dkms() { "${dkms_env[@]}" "${DKMS_BASE[@]}" "$@"; }

dkms_build_all() { # $1 = phase name; output goes to per-kernel logs
    local rc=0 r k d nv
    for k in "${KERNELS[@]}"; do
        if [[ $DKMS_MODE == autoinstall ]]; then
            r=0
            run_dkms "${DKMS_BUILD_OPTS[@]}" autoinstall -k "$k" --kernelsourcedir "${HDR[$k]}" \
                >"$LOG/dkms-$1-$k.log" 2>&1 || r=$?
            echo "autoinstall -k $k: exit $r" >>"$LOG/dkms-$1.rc"
            ((r == 0)) || rc=$r
        else
            : >"$LOG/dkms-$1-$k.log"
            for d in "${SRC_DIRS[@]}"; do
                nv=${MOD_OF_DIR[${d##*/}]}
                r=0
                run_dkms "${DKMS_BUILD_OPTS[@]}" install -m "${nv%%/*}" -v "${nv#*/}" -k "$k" \
                    --kernelsourcedir "${HDR[$k]}" >>"$LOG/dkms-$1-$k.log" 2>&1 || r=$?
                echo "install $nv -k $k: exit $r" >>"$LOG/dkms-$1.rc"
                ((r == 0)) || rc=$r
            done
        fi
    done
    return $rc
}
# With several kernels the last one is left out of the cold pass, then "appears": built
# alone, as a kernel package's hook asks for (a real compile on both sides).
NEW_KERNEL=""
COLD_KERNELS=("${KERNELS[@]}")
if ((${#KERNELS[@]} > 1)); then
    NEW_KERNEL=${KERNELS[${#KERNELS[@]}-1]}
    COLD_KERNELS=("${KERNELS[@]:0:${#KERNELS[@]}-1}")
fi
with_kernels() { # KERNEL... -- COMMAND...: runs COMMAND with KERNELS narrowed
    local -a all=("${KERNELS[@]}") only=() rc=0
    while [[ $1 != -- ]]; do only+=("$1"); shift; done
    shift
    KERNELS=("${only[@]}")
    "$@" || rc=$?
    KERNELS=("${all[@]}")
    return $rc
}
dkms_cold() {
    local d rc=0
    for d in "$DS"/*; do run_dkms add "$d" >>"$LOG/dkms-add.log" 2>&1 || rc=$?; done
    with_kernels "${COLD_KERNELS[@]}" -- dkms_build_all cold || rc=$?
    return $rc
}
dkms_newkernel() { with_kernels "$NEW_KERNEL" -- dkms_build_all newkernel; }
dkms_warm() { dkms_build_all warm; }
dkms_status() { run_dkms status >"$LOG/dkms-status.out" 2>"$LOG/dkms-status.err"; }
dkms_reinstall() {
    local d nv rc=0 last=${KERNELS[${#KERNELS[@]}-1]}
    local -a all=("${KERNELS[@]}")
    for d in "${SRC_DIRS[@]}"; do
        nv=${MOD_OF_DIR[${d##*/}]}
        run_dkms unbuild -m "${nv%%/*}" -v "${nv#*/}" -k "$last" >>"$LOG/dkms-reinstall-unbuild.log" 2>&1 || true
    done
    KERNELS=("$last")
    dkms_build_all reinstall || rc=$?
    KERNELS=("${all[@]}")
    return $rc
}

KS_KARGS=()
for k in "${KERNELS[@]}"; do KS_KARGS+=(--kernel "$k"); done
ks_cold() {
    local -a args=() k
    for k in "${COLD_KERNELS[@]}"; do args+=(--kernel "$k"); done
    "$KMODSYNC" --root "$R" sync -j "$JOBS" "${args[@]}" >"$LOG/kmodsync-cold.log" 2>&1
}
ks_newkernel() { "$KMODSYNC" --root "$R" sync -j "$JOBS" --kernel "$NEW_KERNEL" >"$LOG/kmodsync-newkernel.log" 2>&1; }
ks_warm() { "$KMODSYNC" --root "$R" sync -j "$JOBS" "${KS_KARGS[@]}" >"$LOG/kmodsync-warm.log" 2>&1; }
ks_status() { "$KMODSYNC" --root "$R" status >"$LOG/kmodsync-status.out" 2>"$LOG/kmodsync-status.err"; }
ks_reinstall() {
    local last=${KERNELS[${#KERNELS[@]}-1]}
    "$KMODSYNC" --root "$R" kernel-remove "$last" >"$LOG/kmodsync-reinstall.log" 2>&1 &&
        "$KMODSYNC" --root "$R" sync -j "$JOBS" --kernel "$last" >>"$LOG/kmodsync-reinstall.log" 2>&1
}

# ---------------------------------------------------------------- timing
declare -A WALL=() CPU=() RC=() OTHER=()
TIMEFORMAT='%3R %3U %3S'
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
machine_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }  # jiffies, all CPUs
timed() { # key function
    local key=$1 tf="$T/time.$1" rc=0 w u s b0 b1
    shift
    note "running $key ..."
    b0=$(machine_busy)
    { time "$@"; } 2>"$tf" || rc=$?
    b1=$(machine_busy)
    read -r w u s < <(tail -n1 "$tf") || true
    [[ -n ${s:-} ]] || { w=0 u=0 s=0; note "  (no timing for $key, see $tf)"; }
    WALL[$key]=$w
    CPU[$key]=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.3f", u+s}')
    RC[$key]=$rc
    # CPU time the whole machine spent meanwhile, minus ours: other work = noise
    OTHER[$key]=$(awk -v b="$((b1 - b0))" -v hz="$CLK_TCK" -v c="${CPU[$key]}" \
        'BEGIN{o = b / hz - c; if (o < 0) o = 0; printf "%.1f", o}')
    note "  $key: ${w}s wall, ${CPU[$key]}s cpu, exit $rc (other processes: ${OTHER[$key]} cpu-s)"
}
# The short phases (warm, status, reinstall) start after the previous phase's writes are
# on disk: otherwise a 50 ms pass measures the kernel's writeback of a cold pass (seen:
# 250 ms wall for 31 ms of CPU), whichever tool runs. Same for both tools.
settle() { sync; sleep 1; }
# timed_short KEY FUNCTION: a phase that may take milliseconds. This VM stalls a process
# for hundreds of ms now and then (seen: status 0.573 s wall for 0.015 s of CPU), so a
# phase under 2 s is run 5 times and its median run is kept, as engine_overhead.sh does.
# Longer phases (DKMS's) run once: the stalls are noise there. Same rule for both tools.
timed_short() {
    local key=$1 fn=$2 i
    settle
    timed "$key" "$fn"
    if awk -v w="${WALL[$key]}" 'BEGIN{exit !(w < 2)}'; then
        local runs=("${WALL[$key]} ${CPU[$key]} ${RC[$key]} ${OTHER[$key]}")
        for i in 2 3 4 5; do
            timed "$key" "$fn"
            runs+=("${WALL[$key]} ${CPU[$key]} ${RC[$key]} ${OTHER[$key]}")
        done
        local median
        median=$(printf '%s\n' "${runs[@]}" | sort -n -k1,1 | sed -n 3p)
        read -r "WALL[$key]" "CPU[$key]" "RC[$key]" "OTHER[$key]" <<<"$median" # quoted: nullglob
        note "  $key: median of 5 runs: ${WALL[$key]}s wall (all: $(printf '%s\n' "${runs[@]}" | awk '{printf "%s ", $1}'))"
    fi
}

# Warm the page cache (headers trees, sources, compiler) so the first tool does
# not pay for cold disk reads the second one skips.
note "warming page cache"
for k in "${KERNELS[@]}"; do
    find -L "${HDR[$k]}" -type f -print0 2>/dev/null | xargs -0 -r cat >/dev/null 2>&1 || true
done
find "$T/srcs" -type f -exec cat {} + >/dev/null 2>&1 || true
gcc --version >/dev/null 2>&1 || true

# How busy is the machine with other work? CPU use over 2 s while we sit idle.
cpu_sample() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
read -r tot0 idle0 < <(cpu_sample); sleep 2; read -r tot1 idle1 < <(cpu_sample)
BUSY_BEFORE=$(awk -v t="$((tot1 - tot0))" -v i="$((idle1 - idle0))" 'BEGIN{printf "%d", (t > 0) ? (100 * (t - i) / t) : 0}')
((BUSY_BEFORE < 10)) ||
    note "warning: the machine is ${BUSY_BEFORE}% busy with other work: wall times will be inflated"

run_half_dkms() {
    touch "$T/stamp.dkms"; sleep 0.01
    timed dkms.cold dkms_cold
    [[ -z $NEW_KERNEL ]] || timed dkms.newkernel dkms_newkernel
    timed_short dkms.warm dkms_warm
    timed_short dkms.status dkms_status
    settle
    timed dkms.reinstall dkms_reinstall
}
run_half_ks() {
    touch "$T/stamp.ks"; sleep 0.01
    timed kmodsync.cold ks_cold
    [[ -z $NEW_KERNEL ]] || timed kmodsync.newkernel ks_newkernel
    timed_short kmodsync.warm ks_warm
    timed_short kmodsync.status ks_status
    "$KMODSYNC" --root "$R" status --json >"$LOG/kmodsync-status.json" 2>/dev/null || true
    settle
    timed kmodsync.reinstall ks_reinstall
}
if [[ $ORDER == dkms-first ]]; then
    ((RUN_DKMS)) && run_half_dkms
    ((RUN_KS)) && run_half_ks
else
    ((RUN_KS)) && run_half_ks
    ((RUN_DKMS)) && run_half_dkms
fi

# ---------------------------------------------------------------- cells
# DKMS: ok = 'dkms status' says installed; skip = AUTOINSTALL unset (autoinstall
# ignores the module) or BUILD_EXCLUSIVE (message in the cold log); else failed.
declare -A CELL_D=() CELL_K=()
if ((RUN_DKMS)); then
    for d in "${SRC_DIRS[@]}"; do
        nv=${MOD_OF_DIR[${d##*/}]} n=${nv%%/*} v=${nv#*/}
        for k in "${KERNELS[@]}"; do
            st=fail
            if awk -v p="$n/$v, $k, " 'index($0, p) == 1 && /: installed/ {f = 1} END {exit !f}' \
                "$LOG/dkms-status.out"; then
                st=ok
            elif grep -qF "for module $n includes a BUILD_EXCLUSIVE" "$LOG/dkms-cold-$k.log"; then
                st=skip
            elif [[ $DKMS_MODE == autoinstall ]]; then
                IFS='|' read -r _ _ ai < <(eval_conf "$DS/${d##*/}/dkms.conf" "$k" "$DT" "$DS")
                [[ -n $ai ]] || st=skip
            fi
            CELL_D["$nv $k"]=$st
        done
    done
fi

# kmodsync: read 'status --json' whatever its exact shape (cells are found by
# the kernel release and module name they mention); fall back to dkms-style text.
KS_OUTCOMES=""
if ((RUN_KS)); then
    if [[ -n $PYTHON ]]; then
        KS_PARSED=$("$PYTHON" - "$LOG/kmodsync-status.json" "$LOG/kmodsync-status.out" \
            "${KERNELS[*]}" "${MODS[*]}" <<'PY' || true
import json, re, sys, collections
jpath, tpath, kernels, mods = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
names = {m.split('/')[0]: m for m in mods}
OUTKEYS = ('outcome', 'state', 'status', 'result')
cells = {}
def mod_of(s):
    if not isinstance(s, str): return None
    for n, m in names.items():
        if s in (n, m, n + '-' + m.split('/', 1)[1]) or s.startswith(n + '/'): return m
    return None
def kern_of(s):
    return s if isinstance(s, str) and s in kernels else None
def add(m, k, out):
    if m and k and isinstance(out, str): cells.setdefault((m, k), out)
def walk(o, ctx):
    if isinstance(o, dict):
        here = list(ctx)
        for key, val in o.items():
            if isinstance(val, (str, int, float)) and not isinstance(val, bool):
                here.append(str(val))
            elif isinstance(val, dict) and key.lower() in ('module', 'source', 'kernel'):
                here += [str(x) for x in val.values() if isinstance(x, str)]
        ms = {mod_of(s) for s in here} - {None}; ks = {kern_of(s) for s in here} - {None}
        outk = [key for key in o if key.lower() in OUTKEYS and isinstance(o[key], str)]
        if outk and len(ms) == 1 and len(ks) == 1:
            add(ms.pop(), ks.pop(), o[outk[0]])
        for key, val in o.items():
            c = here + [key]
            if isinstance(val, str):
                m = mod_of(key) or next(iter({mod_of(s) for s in here} - {None}), None)
                k = kern_of(key) or next(iter({kern_of(s) for s in here} - {None}), None)
                if (mod_of(key) or kern_of(key)) and key.lower() not in OUTKEYS:
                    add(m, k, val)
            else:
                walk(val, c)
    elif isinstance(o, list):
        for x in o: walk(x, ctx)
try:
    walk(json.load(open(jpath)), [])
except Exception:
    pass
if not cells:   # dkms-style text: NAME/VER, KV, ARCH: state
    try:
        for line in open(tpath):
            r = re.match(r'\s*([^\s,/]+)/([^\s,]+),\s*([^\s,]+),\s*[^:]+:\s*(\S+)', line)
            if r: add(mod_of(r.group(1)), kern_of(r.group(3)), r.group(4))
    except Exception:
        pass
def norm(s):
    l = s.lower()
    if re.search(r'fail|error|broken', l): return 'fail'
    if re.search(r'\bnot.?(installed|built)', l): return 'other'
    if re.search(r'skip|exclu|not.?auto|disabled|unsupported|no.?headers|missing|n/a', l): return 'skip'
    if re.search(r'install|^ok$|built|up.?to.?date|cached|success|done|current|fresh', l): return 'ok'
    return 'other'
raw = collections.Counter()
for (m, k), out in sorted(cells.items()):
    raw[out] += 1
    print('CELL %s %s %s' % (m, k, norm(out)))
print('RAW ' + ', '.join('%s=%d' % kv for kv in sorted(raw.items())))
PY
)
        while read -r tag a b c; do
            case $tag in
                CELL) CELL_K["$a $b"]=$c ;;
                RAW) KS_OUTCOMES="$a${b:+ $b}${c:+ $c}" ;;
            esac
        done <<<"$KS_PARSED"
    fi
fi

count_cells() { # $1 = name of assoc array; prints "ok N fail N skip N [other N] [unknown N]"
    local -n arr=$1
    local ok=0 fail=0 skip=0 other=0 unk=0 m k
    for m in "${MODS[@]}"; do
        for k in "${KERNELS[@]}"; do
            case ${arr["$m $k"]:-} in
                ok) ok=$((ok+1)) ;; fail) fail=$((fail+1)) ;; skip) skip=$((skip+1)) ;;
                other) other=$((other+1)) ;; *) unk=$((unk+1)) ;;
            esac
        done
    done
    printf 'ok %d  failed %d  skipped %d' "$ok" "$fail" "$skip"
    ((other)) && printf '  other %d' "$other"
    ((unk)) && printf '  unknown %d' "$unk"
    echo
}

# installed .ko files per kernel (written after the tool's start stamp), signed, compressed
ko_report() { # $1 modules dir (…/lib/modules), $2 stamp
    local k files n signed f exts
    for k in "${KERNELS[@]}"; do
        mapfile -t files < <(find "$1/$k" -newer "$2" -type f -name '*.ko*' 2>/dev/null | LC_ALL=C sort)
        n=${#files[@]} signed=0
        for f in "${files[@]}"; do
            [[ -n $(modinfo -F sig_id "$f" 2>/dev/null) ]] && signed=$((signed+1))
        done
        exts=$(for f in "${files[@]}"; do echo ".ko${f##*.ko}"; done | sort | uniq -c | awk '{printf "%s%s x%s", (NR>1?", ":""), $2, $1}')
        local indep=0
        if [[ -f $1/$k/modules.dep ]]; then
            for f in "${files[@]}"; do grep -qF "${f#"$1/$k/"}:" "$1/$k/modules.dep" && indep=$((indep+1)); done
        fi
        printf '    %-24s %3d .ko installed (%s), %d signed, %d in modules.dep\n' \
            "$k" "$n" "${exts:-none}" "$signed" "$indep"
    done
}

# ---------------------------------------------------------------- report
fmt_s() { awk -v x="$1" 'BEGIN{ if (x < 10) printf "%.3fs", x; else printf "%.1fs", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "inf" }'; }

echo
echo "=== DKMS vs kmodsync: ${#MODS[@]} module sources x ${#KERNELS[@]} kernels = $NCELLS cells, -j $JOBS, $(nproc) CPUs"
echo "kernels: ${KERNELS[*]}"
echo "sources: ${MODS[*]}"
if ((RUN_DKMS)); then
echo "DKMS:    $DKMS_VERSION, throwaway trees: dkms --dkmstree T/dkms/tree --sourcetree T/dkms/src --installtree T/dkms/root/lib/modules"
if [[ $DKMS_MODE == autoinstall ]]; then
    echo "         cold   = 'dkms add T/dkms/src/NAME-VER' per source, then 'dkms -j $JOBS autoinstall -k KV --kernelsourcedir HDR' per kernel"
    echo "         warm   = the same autoinstall per kernel again (DKMS retries every failed cell)"
else
    echo "         cold   = 'dkms add' per source, then 'dkms -j $JOBS install -m M -v V -k KV --kernelsourcedir HDR' per cell"
    echo "         warm   = the same loop again (installed cells refuse with 'already installed', the others are retried)"
fi
echo "         status = 'dkms status'"
if ((DKMS_DEPMOD)); then
    echo "         depmod: DKMS's own depmod after each install, redirected with -b into the throwaway tree ($(wc -l <"$T/dkms/depmod.calls") depmod runs in total)"
else
    echo "         depmod: off (--no-depmod)"
fi
fi
if ((HAVE_KS)); then
    echo "kmodsync: $KMODSYNC"
    echo "         cold/warm = 'kmodsync --root R sync -j $JOBS ${KS_KARGS[*]}', status = 'kmodsync --root R status'"
else
    echo "kmodsync: not built (looked for $KMODSYNC) - kmodsync half skipped"
fi
echo "other CPU use just before timing: ${BUSY_BEFORE}% of $(nproc) CPUs (well above 0: the machine was busy, wall times inflated)"
echo "in-tree modules copied into the trees: $( ((INTREE)) && echo yes || echo no ); MOK signing key given to both: $( ((SIGN)) && echo yes || echo no )"
echo

printf '%-7s %-32s %-32s %s\n' phase "dkms wall (cpu)" "kmodsync wall (cpu)" "ratio dkms/kmodsync (wall, cpu)"
for ph in cold newkernel warm status reinstall; do
    dk="-" ks="-" rt="n/a"
    if [[ -n ${WALL[dkms.$ph]:-} ]]; then
        dk="$(fmt_s "${WALL[dkms.$ph]}") (cpu $(fmt_s "${CPU[dkms.$ph]}"))"
        ((${RC[dkms.$ph]} == 0)) || dk+=" rc=${RC[dkms.$ph]}"
    fi
    if [[ -n ${WALL[kmodsync.$ph]:-} ]]; then
        ks="$(fmt_s "${WALL[kmodsync.$ph]}") (cpu $(fmt_s "${CPU[kmodsync.$ph]}"))"
        ((${RC[kmodsync.$ph]} == 0)) || ks+=" rc=${RC[kmodsync.$ph]}"
    fi
    if [[ -n ${WALL[dkms.$ph]:-} && -n ${WALL[kmodsync.$ph]:-} ]]; then
        rt="$(ratio "${WALL[dkms.$ph]}" "${WALL[kmodsync.$ph]}") (cpu $(ratio "${CPU[dkms.$ph]}" "${CPU[kmodsync.$ph]}"))"
    fi
    printf '%-7s dkms %-27s kmodsync %-23s ratio %s\n' "$ph" "$dk" "$ks" "$rt"
done
echo "(rc = exit status when not 0; expected while some cells fail: dkms autoinstall exits 11, dkms install 10)"
echo "(cold: every kernel but the last, ${COLD_KERNELS[*]}; newkernel: ${NEW_KERNEL:-none}, built alone afterwards)"
echo
# How close a compiling pass comes to the machine's limit: its CPU seconds spread over -j
# cores is the least wall time any scheduler could reach.
echo "parallel efficiency (wall / (cpu / $JOBS); 1.00 = every core busy throughout; target <= 1.10):"
for key in kmodsync.cold kmodsync.newkernel dkms.cold dkms.newkernel; do
    [[ -n ${WALL[$key]:-} ]] || continue
    awk -v w="${WALL[$key]}" -v c="${CPU[$key]}" -v j="$JOBS" -v k="$key" \
        'BEGIN{b = c / j; printf "  %-20s wall %7.1fs  cpu %7.1fs  cpu/%d %7.1fs  ratio %.2f %s\n", k, w, c, j, b, (b > 0 ? w / b : 0), (b > 0 && w / b <= 1.10 ? "PASS" : "MISS")}'
done
echo "targets for kmodsync ($NCELLS cells; the issue's are for 20 modules x 3 kernels):"
target() { # key limit-seconds label
    [[ -n ${WALL[$1]:-} ]] || return 0
    awk -v w="${WALL[$1]}" -v l="$2" -v t="$3" 'BEGIN{printf "  %-36s %8.3fs  (target < %ss) %s\n", t, w, l, (w < l ? "PASS" : "MISS")}'
}
target kmodsync.warm 0.050 "warm pass (nothing to do)"
target kmodsync.status 0.020 "status"
target kmodsync.reinstall 1 "kernel reinstall from the build cache"
noisy=""
for key in "${!OTHER[@]}"; do
    awk -v o="${OTHER[$key]}" -v w="${WALL[$key]}" -v n="$(nproc)" \
        'BEGIN{exit !(o > 1 && o > 0.05 * w * n)}' && noisy+=" $key:${OTHER[$key]}s"
done
[[ -z $noisy ]] || echo "NOISY: other processes used CPU during:$noisy (cpu-s) - wall times of those phases are inflated; rerun on a quiet machine"
echo
echo "cells ($NCELLS):"
((RUN_DKMS)) && echo "  dkms      $(count_cells CELL_D)"
if ((RUN_KS)); then
    echo "  kmodsync  $(count_cells CELL_K)"
    echo "            (kmodsync outcomes as reported: ${KS_OUTCOMES:-none parsed from status --json/status})"
fi
echo "installed files:"
if ((RUN_DKMS)); then echo "  dkms"; ko_report "$DKMS_IT" "$T/stamp.dkms"; fi
if ((RUN_KS)); then echo "  kmodsync"; ko_report "$R/usr/lib/modules" "$T/stamp.ks"; fi

echo
echo "per cell (dkms / kmodsync; ! = differ):"
printf '  %-30s' "module"
for k in "${KERNELS[@]}"; do printf ' %-24s' "$k"; done
echo
for m in "${MODS[@]}"; do
    printf '  %-30s' "$m"
    for k in "${KERNELS[@]}"; do
        a=${CELL_D["$m $k"]:--} b=${CELL_K["$m $k"]:--} mark=""
        ((RUN_DKMS && RUN_KS)) && [[ $a != "$b" ]] && mark=" !"
        printf ' %-24s' "$a / $b$mark"
    done
    echo
done

host_snapshot >"$T/host.after"
HOST_CHANGED=0
echo
if diff -q "$T/host.before" "$T/host.after" >/dev/null; then
    echo "host check: ${HOST_WATCH[*]} unchanged"
else
    echo "host check: CHANGED during the run (other activity on the machine, or a leak):"
    diff "$T/host.before" "$T/host.after" | head -n 20 | sed 's/^/    /' || true
    HOST_CHANGED=1
fi
((KEEP)) && echo "logs: $LOG"
exit $((HOST_CHANGED ? 3 : 0))
}
