#!/usr/bin/env bash
# engine_overhead.sh - kmodsync's own planning + bookkeeping cost per cell, with no
# compiler in the timed runs.
#
# A throwaway root holds N fake kernels (a fake kbuild tree each: Makefile, .config,
# Module.symvers, include/generated/utsrelease.h) and M fake module sources whose
# MAKE copies a .ko prebuilt at setup time (gcc, one tiny ELF object per module x
# kernel, with the .modinfo libkmod checks). So a "build" is instant and every
# timed second is kmodsync's: discovery, dkms.conf evaluation, input keys, state,
# install, depmod.
#
# Phases (each validated, not only timed):
#   first    sync: every cell built (copy) and installed
#   warm     sync again, nothing to do (repeated, median and min)
#   status   status (repeated, median and min)
#   touched  sync after changing one source file of one module (N cells rebuilt)
#   newkern  sync after adding one kernel (M cells built)
#   and warm/status again on a second, small root (default 20 modules x 3 kernels),
#   the issue's targets; optionally 'dkms status' on the same small matrix.
#
# See bench/README.md. bench/engine_overhead.sh -h
# The whole script is one { ... } block, so bash parses it completely before
# running it and editing the file during a run cannot derail the run.
{
set -euo pipefail
shopt -s nullglob

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

usage() {
    cat <<EOF
usage: $0 [options]
  -n N             fake kernels in the big root (default 20)
  -m M             module sources in the big root (default 50)
  --small N,M      the small root: N kernels x M modules (default 3,20; the issue's
                   targets are for this one); --small 0 skips it
  -j N             sync -j (default: nproc = $(nproc))
  -r R             repetitions of the warm and status runs (default 5)
  --src-kb K       size of each fake module source tree in KiB (default 64; it is
                   hashed on every pass, so it is part of the cost)
  --no-dkms        do not time 'dkms status' on the small matrix
  --dkms-runs R    repetitions of 'dkms status' (default 3)
  --profile        also trace one warm pass of the big root: processes started (by
                   program, from strace -f -e execve), syscall summary (strace -c) and
                   kmodsync's own log (KMODSYNC_LOG) split into its steps
  --strict         exit 4 when a target is missed (default: exit 0, MISS in the table)
  --keep           keep the throwaway tree and print its path
  -h, --help
env: KMODSYNC (default $REPO_DIR/build/core/kmodsync, else build/kmodsync)
exit: 0 ok, 1 a validation failed (wrong cell outcomes), 2 usage, 4 --strict and a MISS
EOF
}

die() { echo "engine_overhead: error: $*" >&2; exit 1; }
note() { echo "engine_overhead: $*" >&2; }
fail() { echo "engine_overhead: VALIDATION FAILED: $*" >&2; FAILED=1; exit 1; }

# ---------------------------------------------------------------- options
NK=20 NM=50 SMALL_K=3 SMALL_M=20 JOBS=$(nproc) REPS=5 SRC_KB=64
DKMS=1 DKMS_RUNS=3 PROFILE=0 STRICT=0 KEEP=0 FAILED=0
if [[ -z ${KMODSYNC:-} ]]; then
    KMODSYNC=$REPO_DIR/build/core/kmodsync
    [[ -x $KMODSYNC || ! -x $REPO_DIR/build/kmodsync ]] || KMODSYNC=$REPO_DIR/build/kmodsync
fi
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { usage >&2; echo "engine_overhead: $1 wants a positive number, got '$2'" >&2; exit 2; }; }
while (($#)); do
    case $1 in
        -n) NK=${2:-}; posint -n "$NK"; shift ;;
        -m) NM=${2:-}; posint -m "$NM"; shift ;;
        --small)
            if [[ ${2:-} == 0 ]]; then SMALL_K=0 SMALL_M=0
            elif [[ ${2:-} =~ ^([1-9][0-9]*),([1-9][0-9]*)$ ]]; then SMALL_K=${BASH_REMATCH[1]} SMALL_M=${BASH_REMATCH[2]}
            else usage >&2; echo "engine_overhead: --small wants N,M or 0" >&2; exit 2; fi
            shift ;;
        -j) JOBS=${2:-}; posint -j "$JOBS"; shift ;;
        -r) REPS=${2:-}; posint -r "$REPS"; shift ;;
        --src-kb) SRC_KB=${2:-}; posint --src-kb "$SRC_KB"; shift ;;
        --no-dkms) DKMS=0 ;;
        --dkms-runs) DKMS_RUNS=${2:-}; posint --dkms-runs "$DKMS_RUNS"; shift ;;
        --profile) PROFILE=1 ;;
        --strict) STRICT=1 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; echo "engine_overhead: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $KMODSYNC == */* ]] || KMODSYNC=$(command -v "$KMODSYNC" || echo "$KMODSYNC")
[[ $KMODSYNC == /* ]] || KMODSYNC=$PWD/$KMODSYNC
if [[ ! -x $KMODSYNC ]]; then
    note "kmodsync binary not found at '$KMODSYNC': SKIPPED (build it with"
    note "  cmake -S $REPO_DIR -B $REPO_DIR/build && cmake --build $REPO_DIR/build"
    note "or set KMODSYNC=/path/to/kmodsync)"
    exit 0
fi
KMODSYNC=$(readlink -f "$KMODSYNC")
command -v gcc >/dev/null || die "gcc is needed to prebuild the fake .ko files (setup only)"
command -v depmod >/dev/null || note "warning: no depmod on PATH: kmodsync's depmod step will fail"
if ((DKMS)); then
    if ((SMALL_K == 0)); then DKMS=0
    elif ! command -v dkms >/dev/null; then note "dkms not installed: its status is not timed"; DKMS=0
    elif [[ $(id -u) != 0 ]]; then note "not root: 'dkms add' refuses, its status is not timed"; DKMS=0
    fi
fi
if ((PROFILE)) && ! command -v strace >/dev/null; then
    note "strace not installed: --profile is limited to kmodsync's own log"
fi

# ---------------------------------------------------------------- clock
# EPOCHREALTIME (bash 5) costs no fork; date +%s%N otherwise.
if [[ -n ${EPOCHREALTIME:-} ]]; then
    now_us_var() { printf -v "$1" '%s' "${EPOCHREALTIME/[.,]/}"; }
else
    now_us_var() { printf -v "$1" '%s' "$(( $(date +%s%N) / 1000 ))"; }
fi

# ---------------------------------------------------------------- temp tree
T=$(mktemp -d "${TMPDIR:-/tmp}/kmodsync-overhead.XXXXXXXX")
chmod 755 "$T" # kmodsync builds as an unprivileged user, who must reach the root inside
T=$(readlink -f "$T")
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    wait 2>/dev/null || true
    if ((KEEP)) || { ((FAILED)) && [[ -n ${T:-} ]]; }; then
        note "kept $T"
    elif [[ -n ${T:-} && -d $T && $T == */kmodsync-overhead.* ]]; then
        rm -rf --one-file-system -- "$T"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$T"
LOG=$T/logs PRE=$T/prebuilt
mkdir -p "$LOG" "$PRE" "$T/tmp"

kv_of() { echo "6.1.0-$1-fake"; }               # kernel number -> release
name_of() { printf 'fakemod%02d' "$1"; }        # module number -> name

# ---------------------------------------------------------------- prebuilt modules
# PRE/KV/NAME.ko for kernels 1..NK+1 (the last one is the kernel added in phase
# 'newkern') and modules 1..max(NM, SMALL_M): a tiny ELF object whose .modinfo has
# vermagic=KV SMP mod_unload, name=NAME, version=1.0 (as tests/unit/fake_system.cpp).
MAXM=$(( NM > SMALL_M ? NM : SMALL_M ))
MAXK=$(( NK + 1 > SMALL_K ? NK + 1 : SMALL_K ))
prebuild() {
    local i j kv name t0 t1
    now_us_var t0
    for ((i = 1; i <= MAXK; i++)); do
        kv=$(kv_of "$i")
        mkdir -p "$PRE/$kv"
        for ((j = 1; j <= MAXM; j++)); do
            name=$(name_of "$j")
            printf '%s\n' \
                "__attribute__((section(\".modinfo\"), used)) static const char v[] = \"vermagic=$kv SMP mod_unload \";" \
                "__attribute__((section(\".modinfo\"), used)) static const char n[] = \"name=$name\";" \
                "__attribute__((section(\".modinfo\"), used)) static const char r[] = \"version=1.0\";" \
                "int ${name}_marker = 1;" >"$PRE/$kv/$name.c"
        done
    done
    # one gcc per batch of 25 files, nproc of them at a time (gcc -c a.c b.c -> a.o b.o)
    (cd "$PRE" && find . -name '*.c' -printf '%h %f\n' | sort | awk '{print $1"/"$2}' |
        xargs -P "$(nproc)" -n 25 sh -c 'for f; do gcc -g -c -o "${f%.c}.ko" "$f" || exit 1; done' sh) ||
        die "gcc could not build the fake modules"
    local n
    n=$(find "$PRE" -name '*.ko' | wc -l)
    ((n == MAXK * MAXM)) || die "prebuilt $n .ko files, expected $((MAXK * MAXM))"
    now_us_var t1
    note "prebuilt $n fake .ko files in $(( (t1 - t0) / 1000 )) ms"
}

# ---------------------------------------------------------------- fake roots
add_kernel() { # $1 root, $2 kernel number
    local R=$1 kv
    kv=$(kv_of "$2")
    local H=$R/usr/src/fake-headers-$kv
    mkdir -p "$H/include/generated" "$R/usr/lib/modules/$kv/kernel"
    echo "# fake kbuild tree for $kv" >"$H/Makefile"
    printf 'CONFIG_MODULES=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_SMP=y\nCONFIG_LOCALVERSION="-fake"\n# CONFIG_MODULE_SIG is not set\n' >"$H/.config"
    : >"$H/Module.symvers"
    echo "#define UTS_RELEASE \"$kv\"" >"$H/include/generated/utsrelease.h"
    : >"$R/usr/lib/modules/$kv/modules.order"
    ln -s "/usr/src/fake-headers-$kv" "$R/usr/lib/modules/$kv/build"
}

# Filler: a module source tree of about SRC_KB KiB (hashed on every pass).
filler() { # $1 bytes
    local line="/* filler line of a fake module source, hashed by kmodsync on every pass */"
    local n=$(( $1 / (${#line} + 1) + 1 )) i
    for ((i = 0; i < n; i++)); do echo "$line"; done
}

add_module() { # $1 root, $2 module number
    local R=$1 name
    name=$(name_of "$2")
    local S=$R/usr/src/$name-1.0
    mkdir -p "$S/include"
    # $kernelver, $source_tree and $dkms_tree are set by kmodsync (as by DKMS) when it
    # sources the file; $dkms_tree/NAME/1.0/build is the cell's build directory (also
    # the MAKE command's cwd).
    cat >"$S/dkms.conf" <<EOF
PACKAGE_NAME="$name"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="$name"
DEST_MODULE_LOCATION[0]="/updates/dkms"
AUTOINSTALL=yes
MAKE[0]="sh \${source_tree}/$name-1.0/fakemake.sh \${kernelver} \${dkms_tree}/$name/1.0/build"
CLEAN="true"
EOF
    cat >"$S/fakemake.sh" <<EOF
#!/bin/sh
# fake make: the module was prebuilt for every kernel at setup time
set -e
exec cp "$PRE/\$1/$name.ko" "\$2/$name.ko"
EOF
    chmod +x "$S/fakemake.sh"
    local each=$(( SRC_KB * 1024 / 4 ))
    { echo "// $name: fake module source"; filler "$each"; } >"$S/$name.c"
    { echo "// helpers"; filler "$each"; } >"$S/helpers.c"
    { echo "// header"; filler "$each"; } >"$S/include/$name.h"
    { echo "obj-m := $name.o"; filler "$each"; } >"$S/Makefile"
}

make_root() { # $1 root, $2 kernels, $3 modules
    local R=$1 i
    mkdir -p "$R/usr/src" "$R/usr/lib/modules" "$R/var/lib" "$R/etc"
    ln -s usr/lib "$R/lib"
    for ((i = 1; i <= $2; i++)); do add_kernel "$R" "$i"; done
    for ((i = 1; i <= $3; i++)); do add_module "$R" "$i"; done
}

# ---------------------------------------------------------------- running and checking
# run_ks ROOT OUT ARGS...: runs kmodsync, wall time in LAST_US, exit status in LAST_RC.
run_ks() {
    local R=$1 out=$2 t0 t1
    shift 2
    LAST_RC=0
    now_us_var t0
    "$KMODSYNC" --root "$R" "$@" >"$out" 2>"$out.err" || LAST_RC=$?
    now_us_var t1
    LAST_US=$((t1 - t0))
}

# "installed=N up-to-date=M ..." from a 'sync --json' document
outcomes() {
    grep -o '"status": "[^"]*"' "$1" | sed 's/"status": "\(.*\)"/\1/' | sort | uniq -c |
        awk '{printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1}'
}
count_status() { grep -c "\"status\": \"$2\"" "$1" || true; }
count_kos() { # installed module files of a root (anything under KV/updates or KV/extra)
    find "$1/usr/lib/modules/" -mindepth 2 \( -path '*/updates/*' -o -path '*/extra/*' \) \
        \( -name '*.ko' -o -name '*.ko.*' \) | wc -l
}
json_errors() { # the "errors" array of a sync --json, empty when none
    tr -d '\n' <"$1" | grep -o '"errors": \[[^]]*\]' | sed 's/"errors": \[ *\]//' || true
}

# check_sync OUT WHAT EXPECTED_INSTALLED EXPECTED_UP_TO_DATE
check_sync() {
    local out=$1 what=$2 ins up got_i got_u total errs
    ins=$3 up=$4
    got_i=$(count_status "$out" installed)
    got_u=$(count_status "$out" up-to-date)
    total=$(grep -c '"status": ' "$out" || true)
    errs=$(json_errors "$out")
    if ((LAST_RC != 0 || got_i != ins || got_u != up || total != ins + up)) || [[ -n $errs ]]; then
        echo "--- $what: kmodsync exit $LAST_RC, outcomes: $(outcomes "$out")" >&2
        echo "    expected installed=$ins up-to-date=$up and nothing else" >&2
        [[ -z $errs ]] || echo "    errors: $errs" >&2
        tail -n 20 "$out.err" >&2 || true
        grep -m3 -B2 -A6 '"failed"\|"skipped"' "$out" >&2 || true
        fail "$what: unexpected outcomes (output: $out)"
    fi
}

# "N installed, X ms per built cell over the warm pass": $1 wall us, $2 cells built
per_built() { awk -v u="$1" -v w="$WARM_MEDIAN" -v n="$2" 'BEGIN{printf "%d installed, %.1f ms per built cell over the warm median", n, (u - w) / 1000 / n}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
minimum() { printf '%s\n' "$@" | sort -n | head -n1; }

ROWS=()
MISSES=()
# row PHASE CELLS MICROSECONDS TARGET_KIND TARGET_VALUE [NOTE]
#   TARGET_KIND: percell (ms per cell) | total (ms) | none
row() {
    local phase=$1 cells=$2 us=$3 kind=$4 tv=$5 extra=${6:-} target="-" verdict="" ok
    case $kind in
        percell)
            target="< $tv ms/cell"
            ok=$(awk -v u="$us" -v c="$cells" -v t="$tv" 'BEGIN{print (u / 1000 / c < t) ? 1 : 0}') ;;
        total)
            target="< $tv ms"
            ok=$(awk -v u="$us" -v t="$tv" 'BEGIN{print (u / 1000 < t) ? 1 : 0}') ;;
        *) ok="" ;;
    esac
    if [[ -n $ok ]]; then
        if ((ok)); then verdict=PASS; else verdict=MISS; MISSES+=("$phase"); fi
    fi
    ROWS+=("$(awk -v p="$phase" -v c="$cells" -v u="$us" -v t="$target" -v v="$verdict" -v n="$extra" \
        'BEGIN{printf "%-30s %6d %9.3f %9.3f  %-16s %-6s %s", p, c, u / 1e6, u / 1000 / c, t, v, n}')")
}

# ---------------------------------------------------------------- setup (not timed)
note "setup in $T: prebuilding fake modules"
prebuild
BIG=$T/big
make_root "$BIG" "$NK" "$NM"
CELLS=$((NK * NM))
if ((SMALL_K)); then
    SMALL=$T/small
    make_root "$SMALL" "$SMALL_K" "$SMALL_M"
    SCELLS=$((SMALL_K * SMALL_M))
fi
note "big root: $NK kernels x $NM modules = $CELLS cells; small root: $SMALL_K x $SMALL_M"

# How busy is the machine with other work? CPU use over 1 s while we sit idle.
cpu_sample() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
read -r tot0 idle0 < <(cpu_sample); sleep 1; read -r tot1 idle1 < <(cpu_sample)
BUSY_BEFORE=$(awk -v t="$((tot1 - tot0))" -v i="$((idle1 - idle0))" 'BEGIN{printf "%d", (t > 0) ? (100 * (t - i) / t) : 0}')
((BUSY_BEFORE < 10)) || note "warning: the machine is ${BUSY_BEFORE}% busy with other work: times will be inflated"

# warm up the binary and the page cache (not timed)
"$KMODSYNC" --version >/dev/null 2>&1 || "$KMODSYNC" --help >/dev/null 2>&1 || true
cat "$BIG"/usr/src/*/* "$BIG"/usr/src/*/include/* >/dev/null 2>&1 || true

# ---------------------------------------------------------------- big root
note "big: first pass ($CELLS cells)"
run_ks "$BIG" "$LOG/big-first.json" sync -j "$JOBS" --json
check_sync "$LOG/big-first.json" "first pass" "$CELLS" 0
nko=$(count_kos "$BIG")
((nko == CELLS)) || fail "first pass: $nko module files installed, expected $CELLS"
row "first pass (all built)" "$CELLS" "$LAST_US" none 0 "$nko .ko installed"

note "big: warm pass x $REPS"
W=()
for ((r = 1; r <= REPS; r++)); do
    run_ks "$BIG" "$LOG/big-warm-$r.json" sync -j "$JOBS" --json
    check_sync "$LOG/big-warm-$r.json" "warm pass $r" 0 "$CELLS"
    W+=("$LAST_US")
done
WARM_MEDIAN=$(median "${W[@]}")
row "warm pass, median of $REPS" "$CELLS" "$WARM_MEDIAN" percell 1 "all up-to-date"
row "warm pass, min" "$CELLS" "$(minimum "${W[@]}")" percell 1

note "big: status x $REPS"
S=()
for ((r = 1; r <= REPS; r++)); do
    run_ks "$BIG" "$LOG/big-status-$r.txt" status
    ((LAST_RC == 0)) || fail "status exit $LAST_RC"
    S+=("$LAST_US")
done
n=$(grep -c ' installed ' "$LOG/big-status-1.txt" || true)
((n == CELLS)) || fail "status lists $n installed cells, expected $CELLS ($LOG/big-status-1.txt)"
row "status, median of $REPS" "$CELLS" "$(median "${S[@]}")" none 0
row "status, min" "$CELLS" "$(minimum "${S[@]}")" none 0

if ((PROFILE)); then
    note "big: profiling one warm pass"
    P=$LOG/profile
    mkdir -p "$P"
    if command -v strace >/dev/null; then
        # -ff: one file per process, so no call is split into unfinished/resumed halves
        mkdir -p "$P/execve"
        strace -ff -qq -e trace=execve -o "$P/execve/trace" \
            "$KMODSYNC" --root "$BIG" sync -j "$JOBS" >"$P/execve.out" 2>&1 || true
        cat "$P/execve/"trace.* >"$P/execve.trace" 2>/dev/null || true
        strace -f -qq -c -o "$P/strace-c.txt" \
            "$KMODSYNC" --root "$BIG" sync -j "$JOBS" >"$P/strace-c.out" 2>&1 || true
    fi
    now_us_var PROF_T0
    KMODSYNC_LOG=1 "$KMODSYNC" --root "$BIG" sync -j "$JOBS" >"$P/log.out" 2>"$P/log.err" || true
    now_us_var PROF_T1
fi

# one module changed: its N cells are rebuilt (a bare `touch` changes nothing: the input
# key hashes contents, not times)
note "big: one module source changed"
echo "/* changed at $(date +%s%N) */" >>"$BIG/usr/src/$(name_of 1)-1.0/$(name_of 1).c"
run_ks "$BIG" "$LOG/big-touched.json" sync -j "$JOBS" --json
check_sync "$LOG/big-touched.json" "after changing one module" "$NK" $((CELLS - NK))
row "1 module changed ($NK rebuilt)" "$CELLS" "$LAST_US" none 0 "$(per_built "$LAST_US" "$NK")"

note "big: one kernel added"
add_kernel "$BIG" $((NK + 1))
run_ks "$BIG" "$LOG/big-newkern.json" sync -j "$JOBS" --json
check_sync "$LOG/big-newkern.json" "after adding a kernel" "$NM" "$CELLS"
nko=$(count_kos "$BIG")
((nko == CELLS + NM)) || fail "after adding a kernel: $nko module files installed, expected $((CELLS + NM))"
row "1 kernel added ($NM built)" $((CELLS + NM)) "$LAST_US" none 0 "$(per_built "$LAST_US" "$NM")"

# ---------------------------------------------------------------- small root
if ((SMALL_K)); then
    note "small: first pass ($SCELLS cells)"
    run_ks "$SMALL" "$LOG/small-first.json" sync -j "$JOBS" --json
    check_sync "$LOG/small-first.json" "small first pass" "$SCELLS" 0
    row "small: first pass" "$SCELLS" "$LAST_US" none 0
    W=() S=()
    for ((r = 1; r <= REPS; r++)); do
        run_ks "$SMALL" "$LOG/small-warm-$r.json" sync -j "$JOBS" --json
        check_sync "$LOG/small-warm-$r.json" "small warm pass $r" 0 "$SCELLS"
        W+=("$LAST_US")
    done
    for ((r = 1; r <= REPS; r++)); do
        run_ks "$SMALL" "$LOG/small-status-$r.txt" status
        ((LAST_RC == 0)) || fail "small status exit $LAST_RC"
        S+=("$LAST_US")
    done
    n=$(grep -c ' installed ' "$LOG/small-status-1.txt" || true)
    ((n == SCELLS)) || fail "small status lists $n installed cells, expected $SCELLS"
    row "small: warm, median of $REPS" "$SCELLS" "$(median "${W[@]}")" total 50
    row "small: warm, min" "$SCELLS" "$(minimum "${W[@]}")" total 50
    row "small: status, median of $REPS" "$SCELLS" "$(median "${S[@]}")" total 20
    row "small: status, min" "$SCELLS" "$(minimum "${S[@]}")" total 20
    KS_SMALL_STATUS=$(median "${S[@]}")

    # The same matrix under DKMS: sources added with 'dkms add', then the tree made to
    # look as after 'dkms install' of every cell (built module under
    # DT/NAME/1.0/KV/ARCH/module, kernel-KV-ARCH link, file in the install tree), so
    # 'dkms status' does what it does on a real machine: read each dkms.conf per cell
    # and compare built and installed modules.
    if ((DKMS)); then
        note "dkms: registering $SMALL_M sources and faking their installed cells"
        DT=$T/dkms/tree DS=$T/dkms/src DI=$T/dkms/root/lib/modules
        ARCH=$(uname -m)
        mkdir -p "$DT" "$DS" "$DI"
        cp -a "$SMALL/usr/src/"fakemod* "$DS/"
        dkms_cmd=(env TMPDIR="$T/tmp" dkms --dkmstree "$DT" --sourcetree "$DS" --installtree "$DI")
        for ((j = 1; j <= SMALL_M; j++)); do
            "${dkms_cmd[@]}" add "$DS/$(name_of "$j")-1.0" >>"$LOG/dkms-add.log" 2>&1 ||
                fail "dkms add $(name_of "$j") failed ($LOG/dkms-add.log)"
        done
        DU=()
        for ((r = 1; r <= DKMS_RUNS; r++)); do
            now_us_var t0
            "${dkms_cmd[@]}" status >"$LOG/dkms-status-added.txt" 2>&1 || fail "dkms status failed"
            now_us_var t1
            DU+=($((t1 - t0)))
        done
        n=$(grep -c ': added' "$LOG/dkms-status-added.txt" || true)
        ((n == SMALL_M)) || fail "dkms status lists $n added modules, expected $SMALL_M"
        DKMS_ADDED=$(median "${DU[@]}")
        for ((i = 1; i <= SMALL_K; i++)); do
            kv=$(kv_of "$i")
            mkdir -p "$DI/$kv/updates/dkms"
            for ((j = 1; j <= SMALL_M; j++)); do
                name=$(name_of "$j")
                mkdir -p "$DT/$name/1.0/$kv/$ARCH/module"
                cp "$PRE/$kv/$name.ko" "$DT/$name/1.0/$kv/$ARCH/module/"
                cp "$PRE/$kv/$name.ko" "$DI/$kv/updates/dkms/"
                ln -s "1.0/$kv/$ARCH" "$DT/$name/kernel-$kv-$ARCH"
            done
        done
        DI2=()
        for ((r = 1; r <= DKMS_RUNS; r++)); do
            now_us_var t0
            "${dkms_cmd[@]}" status >"$LOG/dkms-status-installed.txt" 2>&1 || fail "dkms status failed"
            now_us_var t1
            DI2+=($((t1 - t0)))
        done
        n=$(grep -c ': installed$' "$LOG/dkms-status-installed.txt" || true)
        ((n == SCELLS)) || fail "dkms status lists $n cleanly installed cells, expected $SCELLS ($LOG/dkms-status-installed.txt)"
        DKMS_INST=$(median "${DI2[@]}")
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0fx", a / b}'; }
        row "small: dkms status (added)" "$SCELLS" "$DKMS_ADDED" none 0 \
            "median of $DKMS_RUNS; $(ratio "$DKMS_ADDED" "$KS_SMALL_STATUS") kmodsync status"
        row "small: dkms status (installed)" "$SCELLS" "$DKMS_INST" none 0 \
            "median of $DKMS_RUNS; $(ratio "$DKMS_INST" "$KS_SMALL_STATUS") kmodsync status"
    fi
fi

# ---------------------------------------------------------------- report
echo
echo "=== kmodsync engine overhead: fake kernels and instant builds, sync -j $JOBS, $(nproc) CPUs"
echo "kmodsync: $KMODSYNC"
echo "big root: $NK kernels x $NM modules = $CELLS cells (+1 kernel in the last phase); small root: $SMALL_K x $SMALL_M"
echo "module sources: ~$SRC_KB KiB in 6 files each; no signing key; compression: kernel default ($(
    f=$(find "$BIG/usr/lib/modules/" -path '*/updates/*' -name '*.ko*' | head -n1); echo ".ko${f##*.ko}"))"
echo "other CPU use just before timing: ${BUSY_BEFORE}%"
echo
printf '%-30s %6s %9s %9s  %-16s %-6s %s\n' phase cells "wall s" "ms/cell" target result note
for r in "${ROWS[@]}"; do echo "$r"; done
echo
echo "validated: first pass installed every cell (sync --json + .ko count), every warm pass"
echo "reported all cells up-to-date, status listed every cell installed, a changed module"
echo "rebuilt exactly its $NK cells and a new kernel exactly its $NM cells."

if ((PROFILE)); then
    P=$LOG/profile
    echo
    echo "=== profile of one warm pass of the big root ($CELLS cells)"
    if [[ -f $P/execve.trace ]]; then
        # only execve calls that succeeded: a failed one is a $PATH entry tried first
        total=$(grep -c 'execve(.* = 0$' "$P/execve.trace" || true)
        misses=$(grep -c 'execve(.* = -1 ENOENT' "$P/execve.trace" || true)
        echo "processes started (successful execve, kmodsync itself included): $total" \
            "(plus $misses execve calls failing with ENOENT while searching \$PATH)"
        grep 'execve(.* = 0$' "$P/execve.trace" |
            sed -n 's/.*execve("\([^"]*\)", \["[^"]*"\(, "\([^"]*\)"\)\{0,1\}.*/\1 \3/p' |
            awk '{p = $1; a = $2; sub(".*/", "", p); if (a ~ /^-/) p = p " " a; c[p]++}
                 END {for (k in c) printf "  %6d  %s\n", c[k], k}' | sort -rn | head -n 8
    fi
    if [[ -f $P/strace-c.txt ]]; then
        echo "syscalls of kmodsync and its children (strace -f -c; top 8 by time, then the total):"
        awk '/^------/ {n++; next} n == 1 && NF >= 5 && shown < 8 {print; shown++} n == 2 && NF >= 4 {print}' \
            "$P/strace-c.txt" | sed 's/^/  /'
    fi
    if [[ -s $P/log.err ]]; then
        echo "one warm pass split by kmodsync's own log (KMODSYNC_LOG=1), $(( (PROF_T1 - PROF_T0) / 1000 )) ms wall:"
        # [sec.usec pid] started pid N: ARGV...   /   [sec.usec pid] pid N ended: ...
        awk -v t0="$PROF_T0" -v t1="$PROF_T1" '
            { line = $0; gsub(/^\[/, "", line); split(line, f, " "); t = f[1] * 1e6 - t0 }
            f[3] == "started" && f[4] == "pid" {
                pid = f[5]; sub(":", "", pid); prog = f[6]; sub(".*/", "", prog)
                if (prog == "bash" && line ~ /__kmodsync_conf/) prog = "bash (dkms.conf evaluation)"
                else if (f[7] ~ /^-/) prog = prog " " f[7]
                start[pid] = t; what[pid] = prog; count[prog]++
                if (prog ~ /dkms.conf/ && (first_eval == "" || t < first_eval)) first_eval = t
            }
            f[3] == "pid" && f[5] == "ended:" && (f[4] in start) {
                pid = f[4]; life[what[pid]] += t - start[pid]
                if (what[pid] ~ /dkms.conf/ && t > last_eval) last_eval = t
            }
            /planned [0-9]+ cells/ { planned = t }
            { if (t > last) last = t }
            END {
                for (p in count) printf "  %6d x %-28s %9.1f ms summed lifetime\n", count[p], p, life[p] / 1000 | "sort -rn"
                close("sort -rn")
                if (first_eval != "") {
                    printf "  %9.1f ms  start until the first dkms.conf evaluation (state, kernels, sources)\n", first_eval / 1000
                    printf "  %9.1f ms  dkms.conf evaluations (first start to last end, %d CPUs)\n", (last_eval - first_eval) / 1000, '"$(nproc)"'
                }
                if (planned != "" && first_eval == "")
                    printf "  %9.1f ms  start until the plan is made (no dkms.conf evaluated)\n", planned / 1000
                else if (planned != "")
                    printf "  %9.1f ms  rest of the planning (source tree hashes, input keys, tool probes, state checks)\n", (planned - last_eval) / 1000
                if (planned != "") {
                    printf "  %9.1f ms  after the plan until exit (report, state, exit)\n", (t1 - t0 - planned) / 1000
                }
            }' "$P/log.err"
    fi
    echo "(raw traces: $P; kept with --keep)"
fi

if ((${#MISSES[@]})); then
    echo
    printf 'MISSED targets:'; printf ' [%s]' "${MISSES[@]}"; echo
    ((STRICT)) && exit 4
fi
exit 0
}
