#!/usr/bin/env bash
# Twenty kmodsync passes started at once on one root -- as when apt's hook, a kernel's
# postinst hook and the boot service fire together -- serialise on the root's lock and
# leave exactly the state that one pass leaves (issue 9, point 3).
#
# Two roots, identical but for their directory, each with two kernels (build links to the
# host's real headers) and three sources: kmshello (builds), kmshello2 (a distinct copy of
# it that builds) and kmsbroken (does not compile). Every dkms.conf's MAKE appends
# "NAME KV" to a counter file in a build_writable directory before running make, so each
# compile of a cell is counted (the counter is outside both roots, so both roots' sources
# and specs are byte for byte the same).
#
# The reference root gets ONE `sync`. The test root gets twenty commands at once, in the
# background: plain `sync`, `sync --kernel KV`, `sync -m NAME`, `sync --json`, `status`,
# `status --json` and `dkms autoinstall -k KV`. Then:
#   - every one ends within its timeout, with 0 or 1 (sync; 1 = a failed cell, expected with
#     kmsbroken), 0 (status), 0 or 11 (dkms autoinstall: 11 = a failed cell); never 2, a
#     signal or a timeout;
#   - at least one printed "waiting for another kmodsync pass" on stderr;
#   - each of the six cells was compiled exactly once in all;
#   - the final state is the reference's: status --json (the root's path replaced), the
#     raw state.json (timestamps dropped, the root's path replaced), the installed module
#     files (paths and SHA-256 of the decompressed module), modules.dep/.alias/.symbols,
#     the build cache's entries;
#   - no temporary file (*.kmodsync-*, bar the kept build trees' TMPDIR .kmodsync-tmp) and no
#     tmp- entry in the build cache is left; a further pass builds nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/module_checks.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures
PASSES=20
TIMEOUT=150

require_tools jq modinfo make gcc timeout sha256sum xz zstd objcopy
require_headers "$K1" "$K2"
SUITE_START=$SECONDS

COUNTERS=$WORK/counters
mkdir -p "$COUNTERS"
chmod 777 "$COUNTERS"

# make_test_root ROOT: two kernels, three sources, build_writable = the counters.
make_test_root() {
  local root=$1 dir
  make_root "$root" "$K1" "$K2"
  cp -a "$FIXTURES/kmshello-1.0" "$FIXTURES/kmsbroken-1.0" "$root/usr/src/"
  # kmshello2: the same code under other names, a module of its own.
  dir=$root/usr/src/kmshello2-1.0
  mkdir -p "$dir"
  sed 's/kmshello/kmshello2/g' "$FIXTURES/kmshello-1.0/hello.c" >"$dir/hello2.c"
  printf 'obj-m := kmshello2.o\nkmshello2-y := hello2.o\n' >"$dir/Makefile"
  sed 's/kmshello/kmshello2/g' "$FIXTURES/kmshello-1.0/dkms.conf" >"$dir/dkms.conf"
  for dir in "$root"/usr/src/*-1.0; do
    # Single quotes: $PACKAGE_NAME, $kernelver... are dkms.conf's, expanded when kmodsync
    # evaluates it; the counter's path is expanded now.
    # shellcheck disable=SC2016 # dkms.conf's variables, on purpose
    printf '%s\n' 'MAKE[0]="echo \"$PACKAGE_NAME $kernelver\" >>'"$COUNTERS"'/builds; make KERNELRELEASE=$kernelver -C $kernel_source_dir M=$dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION/build"' \
      >>"$dir/dkms.conf"
  done
  mkdir -p "$root/etc/kmodsync"
  echo "build_writable = $COUNTERS" >"$root/etc/kmodsync/kmodsync.conf"
}

# The reference pass runs in the directory the test root will have, and is then moved
# aside: a module's build-id hashes its debug information, which names the build
# directory (inside the root), so only roots built at one path can have the same bytes.
REF=$WORK/ref
R=$WORK/root
make_test_root "$R"
check_eq "kmshello2's source really is a distinct module" "obj-m := kmshello2.o" "$(head -n1 "$R/usr/src/kmshello2-1.0/Makefile")"

echo "== the reference: one pass"
"$KMODSYNC" --root "$R" sync >"$WORK/ref.out" 2>"$WORK/ref.err"
check_eq "the reference pass exits 1 (kmsbroken fails)" 1 $?
mv "$R" "$REF"
make_test_root "$R"
check "the roots' sources are identical" diff -r "$REF/usr/src" "$R/usr/src"
EXPECTED_CELLS="kmsbroken/1.0 $K1 failed,kmsbroken/1.0 $K2 failed,kmshello/1.0 $K1 installed,kmshello/1.0 $K2 installed,kmshello2/1.0 $K1 installed,kmshello2/1.0 $K2 installed"
check_eq "the reference's matrix" "$EXPECTED_CELLS" "$(matrix "$REF")"
check_eq "the reference compiled each of its 6 cells once (distinct cells, compiles)" "6 6" \
  "$(sort -u "$COUNTERS/builds" | wc -l) $(wc -l <"$COUNTERS/builds")"
mv "$COUNTERS/builds" "$WORK/ref-builds"

echo "== the test root: $PASSES commands at once"
# Each command: a name, then the arguments after `kmodsync --root R`.
COMMANDS=(
  "sync" "sync" "sync --kernel $K1" "sync --kernel $K2" "sync -m kmshello"
  "status" "sync" "sync --kernel $K2" "dkms autoinstall -k $K1" "sync -m kmshello2 -k $K2"
  "sync --json" "sync --kernel $K1" "sync" "status --json" "sync -m kmshello"
  "dkms autoinstall -k $K2" "sync --kernel $K1" "sync" "sync --kernel $K2" "sync"
)
check_eq "$PASSES commands" "$PASSES" "${#COMMANDS[@]}"
mkdir -p "$WORK/runs"
start=$SECONDS
pids=()
for i in "${!COMMANDS[@]}"; do
  # shellcheck disable=SC2086 # the command's words
  (timeout -k 5 "$TIMEOUT" "$KMODSYNC" --root "$R" ${COMMANDS[$i]} >"$WORK/runs/$i.out" 2>"$WORK/runs/$i.err"
   echo $? >"$WORK/runs/$i.rc") &
  pids+=($!)
done
wait "${pids[@]}"
echo "  time  $PASSES commands together: $((SECONDS - start)) s"

waited=0
for i in "${!COMMANDS[@]}"; do
  rc=$(cat "$WORK/runs/$i.rc" 2>/dev/null || echo none)
  command=${COMMANDS[$i]}
  case $command in
    status*) allowed="0" ;;
    dkms*) allowed="0 11" ;;
    *) allowed="0 1" ;;
  esac
  if [[ " $allowed " == *" $rc "* ]]; then
    pass "#$i '$command' exits $rc (one of: $allowed)"
  else
    what=$rc
    [ "$rc" = 124 ] && what="124 (timed out after $TIMEOUT s)"
    [ "$rc" != none ] && [ "$rc" -gt 128 ] 2>/dev/null && what="$rc (killed by signal $((rc - 128)))"
    fail "#$i '$command' exits $what, expected one of: $allowed"
    sed 's/^/    stderr: /' "$WORK/runs/$i.err" | tail -n 15
    sed 's/^/    stdout: /' "$WORK/runs/$i.out" | tail -n 15
  fi
  if grep -q "waiting for another kmodsync pass" "$WORK/runs/$i.err"; then waited=$((waited + 1)); fi
  case $command in
    *--json*)
      check "#$i '$command': stdout is one JSON document" jq -e . "$WORK/runs/$i.out"
      check "#$i '$command': the wait note is not in stdout" test -z "$(grep -F 'waiting for another' "$WORK/runs/$i.out")"
      ;;
  esac
done
check "at least one pass said it was waiting for another (on stderr) [$waited did]" test "$waited" -ge 1
# The note for the lock is a pass's: status reads the state without a pass.
echo "  info  $waited commands printed the wait note"

sort "$COUNTERS/builds" >"$WORK/test-builds" 2>/dev/null || : >"$WORK/test-builds"
check_eq "each cell compiled exactly once in all (6 compiles, 6 distinct cells)" \
  "$(sort "$WORK/ref-builds" | paste -sd,)" "$(paste -sd, "$WORK/test-builds")"
dupes=$(uniq -d "$WORK/test-builds" | paste -sd,)
[ -z "$dupes" ] || echo "    compiled more than once: $dupes"

echo "== the test root's state is the reference's"
check_eq "the matrix" "$EXPECTED_CELLS" "$(matrix "$R")"
check "status runs fine on the test root (state.json loads)" "$KMODSYNC" --root "$R" status
check "status runs fine on the reference root" "$KMODSYNC" --root "$REF" status
# status --json with the roots' paths replaced by ROOT (the reference's first errors name
# the directory it was built in, which is the test root's).
# A module's hash and size are left out: two builds of one source at one path do not
# always give the same bytes (pahole's .BTF of a 6.12 module differed between the
# reference and the test root once in CI); the modules are compared below without it.
status_norm() { # ROOT
  "$KMODSYNC" --root "$1" status --json 2>/dev/null |
    jq -S --arg r "$R" --arg ref "$REF" 'walk(if type == "object" then del(.sha256, .size) elif type == "string" then gsub($r; "ROOT") | gsub($ref; "ROOT") else . end)'
}
status_norm "$REF" >"$WORK/ref-status.json"
status_norm "$R" >"$WORK/test-status.json"
check "status --json is the reference's (root path aside)" diff "$WORK/ref-status.json" "$WORK/test-status.json"
diff "$WORK/ref-status.json" "$WORK/test-status.json" | head -n 20 | sed 's/^/    /'
# The raw state: timestamps dropped, the root's path replaced.
state_norm() { # ROOT
  jq -S --arg r "$R" --arg ref "$REF" \
    'walk(if type == "object" then del(.time, .mtime_ns, .sha256, .size) elif type == "string" then gsub($r; "ROOT") | gsub($ref; "ROOT") else . end)' \
    "$1/var/lib/kmodsync/state.json"
}
state_norm "$REF" >"$WORK/ref-state.json"
state_norm "$R" >"$WORK/test-state.json"
check "state.json is the reference's (timestamps and root path aside)" diff "$WORK/ref-state.json" "$WORK/test-state.json"
diff "$WORK/ref-state.json" "$WORK/test-state.json" | head -n 20 | sed 's/^/    /'

# modules_digest ROOT: every file under usr/lib/modules/*/updates (its relative path, the
# SHA-256 of its decompressed content without the sections a rebuild may change: pahole's
# .BTF and the linker's build-id, which hashes it).
modules_digest() {
  local root=$1 file plain
  plain=$(mktemp "$WORK/plain.XXXXXX")
  (cd "$root/usr/lib/modules" && find . -path '*/updates/*' -type f | sort) | while read -r file; do
    case $file in
      *.xz) xz -dc "$root/usr/lib/modules/$file" >"$plain" ;;
      *.zst) zstd -qdc "$root/usr/lib/modules/$file" >"$plain" ;;
      *.gz) gzip -dc "$root/usr/lib/modules/$file" >"$plain" ;;
      *) cat "$root/usr/lib/modules/$file" >"$plain" ;;
    esac
    objcopy --remove-section=.BTF --remove-section=.note.gnu.build-id "$plain" "$plain.stripped"
    echo "$file $(sha256sum <"$plain.stripped" | cut -d' ' -f1)"
  done
  rm -f "$plain" "$plain.stripped"
}
# state_matches_disk ROOT: every installed file's recorded SHA-256 is the file's own.
state_matches_disk() {
  jq -r '.cells[].files[]? | "\(.sha256)  \(.path)"' "$1/var/lib/kmodsync/state.json" |
    sed "s|  /|  $1/|" | sha256sum --check --quiet
}
check_eq "the reference has 4 module files" 4 "$(modules_digest "$REF" | wc -l)"
check_eq "installed module files: same paths, same content (BTF and build-id aside)" \
  "$(modules_digest "$REF")" "$(modules_digest "$R")"
check "the test root's state records each installed file's own hash" state_matches_disk "$R"
check_eq "the test root's state records 4 installed files" 4 \
  "$(jq '[.cells[].files[]?] | length' "$R/var/lib/kmodsync/state.json")"
for kv in "$K1" "$K2"; do
  for name in kmshello kmshello2; do
    check_eq "$name on $kv: in the test root's modules.dep" 1 "$(in_modules_dep "$R" "$kv" "$name")"
    check_eq "$name on $kv: vermagic" "$kv" "$(modinfo_of "$R" "$kv" "$name" vermagic | cut -d' ' -f1)"
  done
  check_eq "no kmsbroken on $kv" "" "$(module_file "$R" "$kv" kmsbroken)"
  for f in modules.dep modules.alias modules.symbols; do
    check "$f of $kv is the reference's" cmp "$REF/usr/lib/modules/$kv/$f" "$R/usr/lib/modules/$kv/$f"
  done
done
check_eq "the build cache holds the reference's entries" \
  "$(cd "$REF/var/lib/kmodsync/cache" && find . -mindepth 2 -maxdepth 2 | sort | paste -sd' ')" \
  "$(cd "$R/var/lib/kmodsync/cache" && find . -mindepth 2 -maxdepth 2 | sort | paste -sd' ')"

echo "== nothing half-done is left"
# The kept build trees of failed cells hold their TMPDIR, build/.kmodsync-tmp: not a leftover.
leftovers=$(find "$R" -name '*.kmodsync-*' ! -path "$R/var/lib/kmodsync/build/*/build/.kmodsync-tmp" ! -path "$R/var/lib/kmodsync/build/*/build/.kmodsync-tmp/*")
check_eq "no temporary file (*.kmodsync-*) anywhere in the test root" "" "$leftovers"
check_eq "no tmp- entry in the build cache" "" "$(find "$R/var/lib/kmodsync/cache" -name 'tmp-*')"
check_eq "the same kept build trees as the reference" \
  "$(cd "$REF/var/lib/kmodsync" && find build -maxdepth 3 | sort | paste -sd' ')" \
  "$(cd "$R/var/lib/kmodsync" && find build -maxdepth 3 | sort | paste -sd' ')"
check_eq "no pass is still running on the test root (no kmodsync process holds it)" "" \
  "$(pgrep -af -- "--root $R " || true)"

echo "== a further pass on the test root"
"$KMODSYNC" --root "$R" sync >"$WORK/after.out" 2>&1
check_eq "exits 1 (the remembered kmsbroken failures)" 1 $?
check_eq "compiles nothing" 6 "$(wc -l <"$COUNTERS/builds")"
check_eq "reports kmshello and kmshello2 up to date" 4 "$(grep -cE '^ *up-to-date +kmshello2?/1.0' "$WORK/after.out")"
check_eq "kmsbroken: remembered, not retried" 2 "$(grep -c 'known failure, not retried' "$WORK/after.out")"

echo "  time  total: $((SECONDS - SUITE_START)) s"
finish
