#!/usr/bin/env bash
# The hostile corpus (tests/hostile/, see its README.md): one `kmodsync sync --json` pass
# over every broken module source at once, plus a good one (kmshello), on kernel
# 6.1.0-55-amd64 with the host's real headers.
#
# The contract (issue 9, point 1): each broken source gets a clear error naming the source
# and the cause (tests/hostile/EXPECTED), within a time limit; every other cell of the same
# pass still succeeds; the pass exits 1 ("some cell failed"); nothing outside the root
# (and the cells' build directories, which are inside it) is created, changed or deleted;
# no process started by a source outlives the pass.
#
# Parts git cannot hold (non-UTF-8 names, a fifo, symlinks to /etc, an unreadable file, a
# huge sparse file) are made here, in the root's copy of the corpus. Cases that try to
# write outside aim at marker paths (kmodsync-hostile-*), cleaned before and checked after;
# processes they leave behind carry "kmodsync-hostile-MARKER" in their command line.
# HS_BUILD_TIMEOUT (default 20) is the pass's --build-timeout in seconds. HS_EXCLUDE="CASE..."
# leaves cases out (a diagnosis aid when one case breaks the whole pass; not for CI). The
# markers get a per-run tag (kmodsync-hostile-rPID-...) so that two runs of the suite on
# one machine do not see each other's.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/module_checks.sh"

K=6.1.0-55-amd64
K_OTHER=6.12.107+deb12-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS=$(cd "$HERE/../hostile" && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures
BUILD_TIMEOUT=${HS_BUILD_TIMEOUT:-20}
PASS_LIMIT=600 # the pass is killed after this
PASS_BOUND=300 # and must have finished well before

require_tools jq make gcc bash depmod modinfo find mkfifo truncate setsid pgrep timeout
require_headers "$K"

# ---- markers and leftovers, before anything runs
TAG=kmodsync-hostile-r$$
PROC_MARK=$TAG-MARKER
marker_paths() {
  compgen -G "/tmp/$TAG-*"
  compgen -G "/etc/$TAG-*"
  compgen -G "/var/tmp/$TAG-*"
  compgen -G "/usr/src/linux-headers-$K/$TAG-*"
  compgen -G "/usr/src/linux-headers-$K_OTHER/$TAG-*"
  compgen -G "/$TAG-*"
  compgen -G "/root/$TAG-*"
}
VICTIMS=(/etc/$TAG-victim /var/tmp/$TAG-victim)
leftover_pids() { pgrep -f "$PROC_MARK" | grep -vx "$$" || true; }
kill_leftovers() { # by pid: only processes carrying the corpus's marker
  local pid
  for pid in $(leftover_pids); do kill -9 "$pid" 2>/dev/null; done
}
kill_leftovers
marker_paths | while read -r path; do
  case $path in "$WORK"*) ;; *) rm -rf -- "$path" ;; esac
done
for victim in "${VICTIMS[@]}"; do echo "kmodsync hostile corpus: must survive the pass" >"$victim"; done

# ---- the root
R=$WORK/root
make_root "$R" "$K"
cp -a "$CORPUS"/hs-*-1.0 "$R/usr/src/"
cp -a "$FIXTURES/kmshello-1.0" "$R/usr/src/"
S=$R/usr/src
for name in ${HS_EXCLUDE:-}; do
  echo "  (excluded by HS_EXCLUDE: $name)"
  rm -rf "${S:?}/$name-1.0"
done
grep -rlZ kmodsync-hostile- "$S" | xargs -0 -r sed -i "s/kmodsync-hostile-/$TAG-/g"
if [ ! -f "/usr/src/linux-headers-$K_OTHER/Makefile" ]; then
  echo "  (headers of $K_OTHER missing: case hs-wrong-kernel left out)"
  rm -rf "$S/hs-wrong-kernel-1.0"
fi
: >"$S/hs-empty-conf-1.0/dkms.conf"
ln -s /etc "$S/hs-symlink-etc-1.0/etc"
ln -s /etc/shadow "$S/hs-symlink-etc-1.0/shadow"
touch "$S/hs-nonutf8-filename-1.0/"$'junk-\xff\xfe.txt'
mkdir "$S/hs-nonutf8-filename-1.0/"$'dir-\xc3\x28'
echo data >"$S/hs-nonutf8-filename-1.0/"$'dir-\xc3\x28/'$'\xe9t\xe9.txt'
NONUTF8_DIR=$S/$'hs-nonutf8-name-\xff-1.0'
mkdir "$NONUTF8_DIR"
sed 's/kmodsync hostile corpus: hs-nonutf8-filename/kmodsync hostile corpus: hs-nonutf8-name/' \
  "$S/hs-nonutf8-filename-1.0/hello.c" >"$NONUTF8_DIR/hello.c"
printf 'obj-m := hs_nonutf8_name.o\nhs_nonutf8_name-y := hello.o\n' >"$NONUTF8_DIR/Makefile"
printf 'PACKAGE_NAME="hs-nonutf8-name-\xff"\nPACKAGE_VERSION="1.0"\nBUILT_MODULE_NAME[0]="hs_nonutf8_name"\nDEST_MODULE_LOCATION[0]="/updates/dkms"\nAUTOINSTALL="yes"\n' \
  >"$NONUTF8_DIR/dkms.conf"
chmod 000 "$S/hs-unreadable-1.0/hello.c"
mkdir "$S/hs-unreadable-1.0/private"
echo secret >"$S/hs-unreadable-1.0/private/notes"
chmod 000 "$S/hs-unreadable-1.0/private"
mkfifo "$S/hs-fifo-1.0/pipe"
truncate -s 1G "$S/hs-huge-file-1.0/blob.bin"
echo "$SUITE: $(find "$S" -mindepth 1 -maxdepth 1 -name 'hs-*' | wc -l) hostile sources and kmshello in $S"

# ---- the host, before
# /work holds the sources (edited concurrently); /tmp and /var/tmp are shared with other
# sessions of the machine: there only the markers count (new entries are listed).
SNAP_EXCLUDE=(/proc /sys /dev /run /work /tmp /var/tmp "$WORK")
host_changes() { # what changed on the host's root file system since STAMP
  local prune=() path
  for path in "${SNAP_EXCLUDE[@]}"; do prune+=(-path "$path" -o); done
  find / -xdev \( "${prune[@]}" -false \) -prune -o \( -newer "$WORK/stamp" -o -cnewer "$WORK/stamp" \) -print 2>/dev/null | sort
}
tmp_listing() { find /tmp /var/tmp -mindepth 1 -maxdepth 1 -printf '%p\n' 2>/dev/null | grep -v "^$WORK" | sort; }
TMP_BEFORE=$(tmp_listing)
touch "$WORK/stamp"
sleep 1

# ---- the pass
if "$KMODSYNC" sync --help 2>/dev/null | grep -q -- --build-timeout; then
  TIMEOUT_OPTS=(--build-timeout "$BUILD_TIMEOUT")
else
  TIMEOUT_OPTS=()
  echo "  (kmodsync sync has no --build-timeout: builds run with the product's default limit)"
fi
echo "== one pass: kmodsync --root R sync --json -j 2 ${TIMEOUT_OPTS[*]}"
start=$SECONDS
timeout -k 10 "$PASS_LIMIT" "$KMODSYNC" --root "$R" sync --json -j 2 "${TIMEOUT_OPTS[@]}" \
  >"$WORK/pass.json" 2>"$WORK/pass.stderr" </dev/null
rc=$?
elapsed=$((SECONDS - start))
echo "  (the pass took ${elapsed} s, exit status $rc)"
SURVIVORS=$(leftover_pids | xargs -r ps -o pid=,args= -p 2>/dev/null)
check_eq "the pass exits 1 (some cells failed), not killed by timeout(124) or a signal" 1 "$rc"
check "the pass finished within ${PASS_BOUND} s (took ${elapsed} s)" test "$elapsed" -le "$PASS_BOUND"
if [ -s "$WORK/pass.json" ] && jq -e '.cells | type == "array"' "$WORK/pass.json" >/dev/null 2>&1; then
  pass "the pass printed valid JSON"
else
  fail "the pass printed no valid JSON"
  echo '{"cells":[],"errors":[]}' >"$WORK/pass.json"
fi
check_eq "the JSON says some cell failed" true "$(jq -r '.failed' "$WORK/pass.json")"
if [ -s "$WORK/pass.stderr" ]; then
  echo "  (stderr of the pass, first lines:)"
  head -c 2000 "$WORK/pass.stderr" | sed 's/^/    | /'
fi
jq -r '.errors[]?' "$WORK/pass.json" | sed 's/^/    pass error: /' | head -n 20

# ---- per case
# cell_json NAME PREFIX ALTS: the cell of case NAME on K, or null.
cell_json() {
  jq -c --arg n "$1" --arg p "$2" --arg alts "$3" --arg k "$K" '
    ($alts | split(",") | map(select(. != ""))) as $a
    | [.cells[] | select(.kernel == $k)
        | select(.module == $n or (.module | IN($a[]))
                 or ($p == "1" and (.module | startswith($n)))
                 or (((.reason // "") + " " + (.first_error // "")) | contains("/usr/src/" + $n + "-1.0")))][0]' "$WORK/pass.json"
}
INSTALLED_CASES=()
while IFS=$'\t' read -r name want cause alts; do
  case $name in '#'* | '') continue ;; esac
  prefix=0
  if [[ $name == *'*' ]]; then
    name=${name%'*'}
    prefix=1
  elif [ ! -d "$S/$name-1.0" ]; then
    continue
  fi
  alts=${alts:-}
  alts=${alts//kmodsync-hostile-/$TAG-}
  cell=$(cell_json "$name" "$prefix" "$alts")
  if [ "$cell" = null ] || [ -z "$cell" ]; then
    fail "$name: no cell of the pass names this source"
    in_errors=$(jq -r --arg n "$name" '.errors[]? | select(contains($n))' "$WORK/pass.json" | head -n 1)
    [ -n "$in_errors" ] && echo "    (only a pass-level error: $in_errors)"
    continue
  fi
  status=$(jq -r '.status' <<<"$cell")
  module=$(jq -r '.module' <<<"$cell")
  text=$(jq -r '(.reason // "") + " | " + (.first_error // "")' <<<"$cell")
  if [[ "|$want|" == *"|$status|"* ]]; then
    pass "$name: $status"
  else
    fail "$name: expected $want, got $status: ${text:0:300}"
  fi
  case $status in
    failed | skipped)
      if [ "$cause" != - ]; then
        if grep -Eiq -- "$cause" <<<"$text"; then
          pass "$name: the error gives the cause (/$cause/)"
        else
          fail "$name: the error does not give the cause (/$cause/): ${text:0:300}"
        fi
      fi
      if [ "$module" = "$name" ] || { [ "$prefix" = 1 ] && [[ $module == "$name"* ]]; } || grep -qF -- "$name" <<<"$text"; then
        pass "$name: the error names the source"
      else
        fail "$name: the error does not name the source (cell '$module'): ${text:0:300}"
      fi
      ;;
    installed) INSTALLED_CASES+=("$name") ;;
  esac
  # The cases with a time limit stop at it, not later.
  case $name in
    hs-make-forever)
      seconds=$(jq -r '.seconds' <<<"$cell")
      check "$name: stopped near the build limit (${seconds} s, limit ${BUILD_TIMEOUT} s)" \
        awk -v s="$seconds" -v l="$BUILD_TIMEOUT" 'BEGIN { exit !(s <= l + 15) }'
      ;;
  esac
done <"$CORPUS/EXPECTED"

# ---- cells that must work, and their modules
echo "== the good cells of the same pass"
mod_of() { echo "${1//-/_}"; }
assert_module() { # CASE MODULE
  local file
  file=$(module_file "$R" "$K" "$2")
  check "$1: $2.ko is in updates/dkms" test -n "$file"
  [ -n "$file" ] || return 0
  check_eq "$1: $2.ko vermagic" "$K" "$(modinfo -F vermagic "$file" 2>/dev/null | cut -d' ' -f1)"
  check_eq "$1: $2.ko module name" "$2" "$(modinfo -F name "$file" 2>/dev/null)"
  check_eq "$1: $2 is in modules.dep" 1 "$(in_modules_dep "$R" "$K" "$2")"
}
check_eq "kmshello: installed" installed "$(cell_field "$WORK/pass.json" kmshello "$K" status)"
assert_module kmshello kmshello
for name in "${INSTALLED_CASES[@]}"; do
  case $name in hs-dup-*) continue ;; hs-nonutf8-name-) assert_module "$name" hs_nonutf8_name ;; *) assert_module "$name" "$(mod_of "$name")" ;; esac
done

echo "== two sources with the same module name (hs-dup-a, hs-dup-b: hs_dup.ko)"
dup_a=$(cell_field "$WORK/pass.json" hs-dup-a "$K" status)
dup_b=$(cell_field "$WORK/pass.json" hs-dup-b "$K" status)
check_eq "exactly one of hs-dup-a, hs-dup-b is installed (a: $dup_a, b: $dup_b)" 1 \
  "$(printf '%s\n' "$dup_a" "$dup_b" | grep -cx installed)"
for pair in "hs-dup-a hs-dup-b" "hs-dup-b hs-dup-a"; do
  set -- $pair
  if [ "$(cell_field "$WORK/pass.json" "$1" "$K" status)" = installed ]; then
    file=$(module_file "$R" "$K" hs_dup)
    check_eq "hs_dup.ko is the one of $1" "kmodsync hostile corpus: $1" "$(modinfo -F description "$file" 2>/dev/null)"
    reason=$(cell_field "$WORK/pass.json" "$2" "$K" reason)
    check "the refusal of $2 names the other source ($1): $reason" grep -qF -- "$1" <<<"$reason"
  fi
done

echo "== nothing of a failed source is installed"
for name in hs_built_name_slash hs_built_name_dotdot hs_built_loc_dotdot hs_built_loc_absolute hs_dest_loc_escape \
  hs_dest_loc_absolute hs_dest_name_dotdot hs_package_name_dotdot hs_ko_garbage hs_ko_symlink hs_wrong_kernel \
  hs_make_no_ko hs_make_forever hs_symlink_etc hs_many_modules hs_patch_missing hs_patch_escape hs_pre_build_escape; do
  check "no $name module anywhere under the root's module tree" \
    test -z "$(find "$R/usr/lib/modules" -name "$name*" 2>/dev/null)"
done
check "no module under the root outside updates/dkms" \
  test -z "$(find "$R/usr/lib/modules/$K" -path "$R/usr/lib/modules/$K/updates/dkms" -prune -o -name '*.ko*' -print)"
check "no module file is a symlink" test -z "$(find "$R/usr/lib/modules/$K/updates" -type l 2>/dev/null)"

echo "== processes started by the sources"
check_eq "no process of the corpus outlived the pass" "" "$SURVIVORS"
kill_leftovers

echo "== nothing written outside the root"
for path in $(marker_paths); do
  case $path in "${VICTIMS[0]}" | "${VICTIMS[1]}") continue ;; esac
  fail "written outside the root: $path"
done
for victim in "${VICTIMS[@]}"; do
  check "$victim was not deleted" test -f "$victim"
done
check "/etc/shadow is untouched (not newer than the pass)" test ! /etc/shadow -nt "$WORK/stamp"
# Other sessions on the machine install packages meanwhile: their kernels' trees and
# package-manager bookkeeping are left out (a write of the corpus there has a marker name).
HOST_NOISE='^(/usr/share/(doc|man|lintian|bug)(/|$)|/usr/games$|/var/lib/(dpkg|apt|ucf)(/|$)|/var/cache(/|$)|/var/log(/|$)|/root/\.rpmdb(/|$)|/usr/src$|/usr/lib/modules$|/usr/src/linux-(headers|kbuild)-|/usr/lib/modules/|/usr/lib/linux-kbuild-)'
HOST_OURS="^(/usr/src/linux-headers-($K|$K_OTHER)(/|\$)|/usr/lib/modules/($K|$K_OTHER)(/|\$))"
ALL_CHANGES=$(host_changes)
CHANGES=$(grep -Ev "$HOST_NOISE" <<<"$ALL_CHANGES" || true)
OURS=$(grep -E "$HOST_OURS" <<<"$ALL_CHANGES" || true)
[ -n "$OURS" ] && CHANGES=$(printf '%s\n%s\n' "$CHANGES" "$OURS" | sed '/^$/d' | sort -u)
check_eq "no file outside the root created or changed during the pass (find / -xdev -newer)" "" "$CHANGES"
[ -n "$CHANGES" ] && echo "$CHANGES" | head -n 40 | sed 's/^/    changed: /'
TMP_AFTER=$(tmp_listing)
NEW_TMP=$(comm -13 <(echo "$TMP_BEFORE") <(echo "$TMP_AFTER"))
[ -n "$NEW_TMP" ] && echo "$NEW_TMP" | head -n 20 | sed 's/^/    (new in \/tmp or \/var\/tmp during the pass, maybe not ours: /; s/$/)/'
check "no new $TAG entry in /tmp or /var/tmp" test -z "$(grep -F "$TAG" <<<"$NEW_TMP")"

# ---- clean up what the corpus may have left
for path in $(marker_paths); do rm -rf -- "$path"; done
chmod -R u+rwX "$R" 2>/dev/null
finish
