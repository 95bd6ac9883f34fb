#!/usr/bin/env bash
# kmodsync's remote build cache against a real nginx (Debian's, built with
# http_dav_module) on loopback, with WebDAV PUT.
#
# The contract (ROOT/etc/kmodsync/kmodsync.conf): `remote_cache = URL` (http or https),
# `remote_cache_read_only = yes|no` (default no: every build's result is uploaded),
# `remote_cache_layout = flat|subdirs` (default flat: URL/KEY; subdirs: URL/KEY[0:2]/KEY[2:]).
# KEY is a cell's build key (64 lowercase hex digits), which depends on the module
# source, the kernel's headers and the tools, not on the root's path. An object is a
# zstd-compressed tar of result.json ({"ok", "reason", "first_error", "modules": [{"file",
# "sha256"}]}), the module files named there and build.log. A local cache miss GETs the
# object (404: a miss); one that is whole, whose modules match their sha256 and whose
# vermagic fits the kernel (libkmod) is used ("installed from the remote cache"); any
# other is rejected with a note on stderr ("remote cache" ... "rejected", naming the
# cell), the cell is built from source and, unless read-only, uploaded over the bad
# object. Failures are uploaded too and remembered on other machines; `--retry` ignores
# them. An unreachable server is only a note.
#
# The suite runs nginx itself (its config, logs, temp paths and store under the work
# directory, listening on a free port of 127.0.0.1, stopped by a trap), checks it with curl
# PUT/GET first, then syncs several fresh roots (each a different directory, of a
# different path length) with the same two kernels (build links to the host's real
# headers) and the kmshello / kmsbroken fixtures:
#   A  writable: builds everything; four objects appear on the server.
#   B  read-only: everything from the remote cache, nothing compiled, nothing PUT; then
#      `sync --retry` compiles kmsbroken again.
#   C  after three objects are damaged on the server (bytes flipped in the zstd stream; a
#      module changed under an intact result.json; a truncated failure): all three
#      rejected and rebuilt, the objects replaced by good ones; D then gets everything
#      from the remote cache again.
#   E  kmshello's object for one kernel copied over the other kernel's key (hashes
#      consistent, vermagic wrong): rejected and rebuilt for that kernel only.
#   S1/S2  the subdirs layout: the same build key, stored as KEY[0:2]/KEY[2:].
#   F  an unreachable server: the pass builds and exits 0 as without a remote cache.
#
# "Nothing compiled" is measured by the module sources themselves: each fixture's
# Makefile gets a line that appends "NAME KERNELRELEASE" to a file of the work directory
# whenever kbuild reads it (kmodsync runs builds with a fixed PATH, so a `make` wrapper
# first on the caller's PATH would never be used). Every root gets the same copy, so the
# build keys are the same in all roots.
#
# Nothing outside the work directory is written: the host's /usr/lib/modules, /usr/src,
# /var/lib/kmodsync, /var/lib/nginx and /var/log/nginx are checked unchanged at the end.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/module_checks.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURES=$HERE/../dkms_cli/fixtures
NGINX=${KMODSYNC_NGINX:-/usr/sbin/nginx}

[ -x "$NGINX" ] || skip "nginx is not installed (apt-get install nginx-light)"
"$NGINX" -V 2>&1 | grep -q -- --with-http_dav_module || skip "$NGINX is built without http_dav_module"
require_tools curl zstd tar jq modinfo make gcc sha256sum find dd truncate
require_headers "$K1" "$K2"
for fixture in kmshello-1.0 kmsbroken-1.0; do
  [ -f "$FIXTURES/$fixture/dkms.conf" ] || skip "no fixture $FIXTURES/$fixture"
done

SUITE_START=$SECONDS
host_snapshot() {
  find /usr/lib/modules /usr/src /var/lib/kmodsync /var/lib/nginx /var/log/nginx -maxdepth 3 \
    -printf '%p %y %s %T@ %l\n' 2>/dev/null | sort
}
HOST_BEFORE=$(host_snapshot)

# refute DESCRIPTION COMMAND...: passes when the command fails.
refute() {
  local description=$1
  shift
  if "$@" >/dev/null 2>&1; then fail "$description"; else pass "$description"; fi
}
phase() { echo "== $*"; }
# ere TEXT: TEXT as an extended regular expression matching itself (6.12.107+deb12 has a +).
# shellcheck disable=SC2001
ere() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# --- nginx --------------------------------------------------------------------------
NGX=$WORK/nginx
STORE=$WORK/store
ACCESS_LOG=$NGX/logs/access.log
mkdir -p "$NGX/logs" "$NGX/tmp" "$STORE"
NGINX_PID=
stop_nginx() {
  if [ -n "$NGINX_PID" ]; then
    kill "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=
  fi
}
trap stop_nginx EXIT

# nginx_conf PORT: the server's configuration, every path under the work directory
# (Debian's nginx has /var/lib/nginx and /var/log/nginx compiled in: each is overridden).
nginx_conf() {
  local user_line=""
  # As root, the workers would run as nobody and could not write the store.
  [ "$(id -u)" -eq 0 ] && user_line="user root root;"
  cat <<EOF
$user_line
worker_processes 1;
daemon off;
pid $NGX/nginx.pid;
lock_file $NGX/nginx.lock;
error_log $NGX/logs/error.log info;
events { worker_connections 64; }
http {
  access_log $ACCESS_LOG;
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  server {
    listen 127.0.0.1:$1;
    root $STORE;
    location / {
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 200m;
    }
  }
}
EOF
}
port_is_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
refute_open() { ! port_is_open "$1"; }
# free_port: a port of 127.0.0.1 nothing listens on (now).
free_port() {
  local port _
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    port_is_open "$port" || { echo "$port"; return 0; }
  done
  return 1
}
start_nginx() {
  local port _ __
  for _ in 1 2 3 4 5; do
    port=$(free_port) || break
    nginx_conf "$port" >"$NGX/nginx.conf"
    "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" >>"$NGX/logs/stdout.log" 2>&1 &
    NGINX_PID=$!
    for __ in $(seq 50); do
      if ! kill -0 "$NGINX_PID" 2>/dev/null; then
        wait "$NGINX_PID" 2>/dev/null
        NGINX_PID=
        break # could not bind (taken in between?): another port
      fi
      if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
        PORT=$port
        return 0
      fi
      sleep 0.1
    done
    stop_nginx
  done
  return 1
}

phase "nginx with WebDAV PUT on loopback"
start_nginx || { tail -n 5 "$NGX/logs/error.log" 2>/dev/null; skip "nginx does not start (see above)"; }
BASE=http://127.0.0.1:$PORT
echo "  nginx $("$NGINX" -v 2>&1 | sed 's|.*/||') on port $PORT, pid $NGINX_PID"
echo "kmodsync remote cache probe" >"$WORK/probe"
check_eq "curl PUT of a new object: 201 Created" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' -T "$WORK/probe" "$BASE/probe/deep/er/object")"
check_eq "curl GET gives the object back" "kmodsync remote cache probe" "$(curl -sf "$BASE/probe/deep/er/object")"
check_eq "curl PUT over it: 204 No Content" 204 \
  "$(curl -s -o /dev/null -w '%{http_code}' -T "$WORK/probe" "$BASE/probe/deep/er/object")"
check_eq "curl GET of a missing object: 404" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/probe/missing")"
check "the object landed in the store directory" test -f "$STORE/probe/deep/er/object"
check "the access log records the PUT" grep -q '"PUT /probe/deep/er/object HTTP/1.1" 201' "$ACCESS_LOG"
check_eq "curl DELETE: 204" 204 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$BASE/probe/deep/er/object")"
rm -rf "$STORE/probe"

PREFIX=kmodsync/objects
FLAT=$STORE/$PREFIX
URL=$BASE/$PREFIX

# --- roots ----------------------------------------------------------------------------
# Builds run confined (read-only but their build directory): every root lets them write
# the counter's directory, and only that (build_writable).
mkdir -p "$WORK/trace"
chmod 777 "$WORK/trace"
COMPILES=$WORK/trace/compiles
: >"$COMPILES"
chmod 666 "$COMPILES"
# The fixtures as every root gets them: kbuild reading a Makefile appends "NAME KV" to
# COMPILES. The same bytes in every root, so the build keys are the same.
SOURCES=$WORK/sources
mkdir -p "$SOURCES"
for name in kmshello kmsbroken; do
  cp -a "$FIXTURES/$name-1.0" "$SOURCES/"
  # shellcheck disable=SC2016 # make's $(...), not the shell's
  printf '$(shell echo %s $(KERNELRELEASE) >>%s)\n' "$name" "$COMPILES" >>"$SOURCES/$name-1.0/Makefile"
done

# new_root DIR "KV..." "NAME..." [CONF-LINE...]: a fresh root with those kernels and
# module sources, and kmodsync.conf holding the lines.
new_root() {
  local root=$1 kernels=$2 names=$3 name
  shift 3
  # shellcheck disable=SC2086
  make_root "$root" $kernels
  for name in $names; do
    cp -a "$SOURCES/$name-1.0" "$root/usr/src/"
  done
  mkdir -p "$root/etc/kmodsync"
  printf '%s\n' "build_writable = $WORK/trace" "$@" >"$root/etc/kmodsync/kmodsync.conf"
}

RUN_WITH=() # a command run_sync runs kmodsync under
not() { ! "$@"; }
not_linked_with_curl() { ldd "$KMODSYNC" >/dev/null && ! ldd "$KMODSYNC" | grep -q libcurl; }
# run_sync TAG ROOT ARGS...: `kmodsync --root ROOT sync ARGS...`. RC is its exit status,
# OUT (stdout) and ERR (stderr) files; NEW_COMPILES the lines COMPILES got meanwhile,
# NEW_ACCESS the requests nginx logged meanwhile; SYNC_SECONDS how long it took.
run_sync() {
  local tag=$1 root=$2 compiles_before access_before start=$SECONDS
  shift 2
  OUT=$WORK/out/$tag.out
  ERR=$WORK/out/$tag.err
  mkdir -p "$WORK/out"
  compiles_before=$(wc -l <"$COMPILES")
  access_before=$(wc -l <"$ACCESS_LOG")
  "${RUN_WITH[@]}" "$KMODSYNC" --root "$root" sync "$@" >"$OUT" 2>"$ERR"
  RC=$?
  SYNC_SECONDS=$((SECONDS - start))
  NEW_COMPILES=$(tail -n "+$((compiles_before + 1))" "$COMPILES")
  NEW_ACCESS=$(tail -n "+$((access_before + 1))" "$ACCESS_LOG")
  if [ "$RC" -gt 1 ]; then
    echo "    kmodsync sync $* on $root exited $RC:"
    sed 's/^/    | /' "$ERR" | head -n 20
  fi
}
# compiled NAME KV: 1 when that cell was compiled during the last run_sync, else 0.
compiled() { awk -v n="$1" -v k="$2" '$1 == n && $2 == k { found = 1 } END { print found + 0 }' <<<"$NEW_COMPILES"; }
compiled_cells() { awk 'NF { print $1 "/" $2 }' <<<"$NEW_COMPILES" | sort -u | paste -sd' '; }
requests() { # METHOD: how many such requests nginx logged during the last run_sync
  grep -c "\"$1 /" <<<"$NEW_ACCESS" || true
}
# reason / status / remembered / first_error of a cell of the last `sync --json`.
jfield() { # NAME KV FIELD
  jq -r --arg m "$1" --arg k "$2" --arg f "$3" \
    '[.cells[] | select(.module == $m and .kernel == $k)][0] | if . == null then "absent" else .[$f] | tostring end' \
    "$OUT" 2>/dev/null || echo "no json"
}
# note_names NAME KV: the last run's stderr has a line saying the remote cache's object of
# that cell was rejected.
rejected_note() {
  grep -ai 'remote cache' "$ERR" | grep -i 'rejected' | grep -F "$1" | grep -qF "$2"
}
rejected_notes() { grep -ai 'remote cache' "$ERR" | grep -ci 'rejected' || true; }
# where_notes: after a failed note check, what the run said about the remote cache and where.
where_notes() {
  local where
  for where in "$ERR" "$OUT"; do
    grep -i 'remote cache' "$where" | grep -v '"reason": "installed from the remote cache"' | head -n 4 |
      sed "s|^|    ($(basename "$where")) |"
  done
  grep -i 'remote cache' "$ERR" "$OUT" | grep -qv '"reason": "installed from the remote cache"' ||
    echo "    (neither stdout nor stderr has a note about the remote cache)"
}
# check_note DESCRIPTION COMMAND...: check, and where_notes when it fails.
check_note() {
  local failed_before=$FAILED
  check "$@"
  [ "$FAILED" -eq "$failed_before" ] || where_notes
}

# --- objects on the server ------------------------------------------------------------
objects() { # DIR: the files of the store under DIR, relative, sorted
  [ -d "$1" ] && find "$1" -type f -printf '%P\n' | sort
}
object_count() { objects "$1" | grep -c . || true; }
store_digest() { (cd "$STORE" && find . -type f -print0 | sort -z | xargs -0r sha256sum) | sha256sum | cut -c1-16; }
# unpack OBJECT DIR: the object's tar, decompressed, into DIR (fails if it is not whole).
unpack() {
  rm -rf "$2" "$2.tar" && mkdir -p "$2" || return 1
  zstd -qdc "$1" >"$2.tar" 2>/dev/null || return 1
  tar -x -C "$2" -f "$2.tar" 2>/dev/null || return 1
  rm -f "$2.tar"
  [ -f "$2/result.json" ]
}
# describe OBJECT: "NAME KV" for a good object of a built module (its modules' name and
# vermagic), "failed" for a failure, "bad" when it is not whole or a sha256 does not match.
describe() {
  local dir=$WORK/unpacked.$$ file sum ok names="" vermagic=""
  if ! unpack "$1" "$dir"; then echo bad; return; fi
  ok=$(jq -r '.ok' "$dir/result.json" 2>/dev/null)
  if [ "$ok" = false ]; then echo failed; return; fi
  [ "$ok" = true ] || { echo bad; return; }
  while read -r file sum; do
    [ -n "$file" ] || continue
    if [ ! -f "$dir/$file" ] || [ "$(sha256sum <"$dir/$file" | cut -d' ' -f1)" != "$sum" ]; then
      echo bad
      return
    fi
    names+=$(modinfo -F name "$dir/$file" 2>/dev/null)
    vermagic=$(modinfo -F vermagic "$dir/$file" 2>/dev/null | cut -d' ' -f1)
  done < <(jq -r '.modules[] | "\(.file) \(.sha256)"' "$dir/result.json")
  echo "${names:-none} ${vermagic:-none}"
}
object_field() { # OBJECT JQ-FILTER: a field of its result.json
  local dir=$WORK/unpacked.$$
  unpack "$1" "$dir" && jq -r "$2" "$dir/result.json"
}

# --- installed modules ----------------------------------------------------------------
# installed ROOT KV: kmshello of KV is installed in ROOT, built for KV, in modules.dep,
# recorded as installed.
installed() {
  local root=$1 kv=$2 tag=$3
  check_eq "$tag: kmshello.ko under updates/dkms of $kv" kmshello "$(modules "$root" "$kv")"
  check_eq "$tag: its vermagic is $kv" "$kv" "$(modinfo_of "$root" "$kv" kmshello vermagic | cut -d' ' -f1)"
  check_eq "$tag: modules.dep of $kv names it" 1 "$(in_modules_dep "$root" "$kv" kmshello)"
}
module_sha() { sha256sum "$(module_file "$1" "$2" "$3")" 2>/dev/null | cut -d' ' -f1; }

# === 1. a writable client builds and uploads ============================================
phase "1. root A (writable remote cache): builds, uploads results and failures"
RA=$WORK/roots/a
new_root "$RA" "$K1 $K2" "kmshello kmsbroken" "remote_cache = $URL"
# One kernel at a time: the objects a pass adds are its kernel's.
run_sync a1 "$RA" --json -k "$K1"
check_eq "A, $K1: exit 1 (kmsbroken fails)" 1 "$RC"
check_eq "A, $K1: kmshello built" installed "$(jfield kmshello "$K1" status)"
check "A, $K1: kmshello's reason says built" grep -qE '^built in [0-9.]+ s$' <<<"$(jfield kmshello "$K1" reason)"
check_eq "A, $K1: kmsbroken failed" failed "$(jfield kmsbroken "$K1" status)"
check_eq "A, $K1: both cells compiled" "kmsbroken/$K1 kmshello/$K1" "$(compiled_cells)"
check_eq "A, $K1: two PUTs" 2 "$(requests PUT)"
check_eq "A, $K1: two objects on the server" 2 "$(object_count "$FLAT")"
OBJECTS_K1=$(objects "$FLAT")
run_sync a2 "$RA" --json -k "$K2"
check_eq "A, $K2: exit 1 (kmsbroken fails)" 1 "$RC"
check_eq "A, $K2: kmshello built" installed "$(jfield kmshello "$K2" status)"
check "A, $K2: kmshello's reason says built" grep -qE '^built in [0-9.]+ s$' <<<"$(jfield kmshello "$K2" reason)"
check_eq "A, $K2: kmsbroken failed" failed "$(jfield kmsbroken "$K2" status)"
check_eq "A, $K2: both cells compiled" "kmsbroken/$K2 kmshello/$K2" "$(compiled_cells)"
check_eq "A, $K2: four objects on the server" 4 "$(object_count "$FLAT")"
check_eq "A: the objects are named by 64 lowercase hex digits, flat under the URL" 4 \
  "$(objects "$FLAT" | grep -cE '^[0-9a-f]{64}$')"
check "A: the PUTs succeeded (201)" test "$(grep -c '"PUT /kmodsync/objects/[0-9a-f]* HTTP/1.1" 201' "$ACCESS_LOG")" -eq 4
OBJECTS_K2=$(comm -13 <(echo "$OBJECTS_K1") <(objects "$FLAT"))
# Which object is which: the pass that added it, and what it holds.
HELLO_K1='' HELLO_K2='' BROKEN_K1='' BROKEN_K2=
for key in $OBJECTS_K1; do
  case $(describe "$FLAT/$key") in
    "kmshello $K1") HELLO_K1=$key ;;
    failed) BROKEN_K1=$key ;;
  esac
done
for key in $OBJECTS_K2; do
  case $(describe "$FLAT/$key") in
    "kmshello $K2") HELLO_K2=$key ;;
    failed) BROKEN_K2=$key ;;
  esac
done
check "A: $K1's pass uploaded kmshello built for $K1 (sha256 as in result.json)" test -n "$HELLO_K1"
check "A: $K2's pass uploaded kmshello built for $K2 (sha256 as in result.json)" test -n "$HELLO_K2"
check "A: each pass uploaded kmsbroken's failure" test -n "$BROKEN_K1" -a -n "$BROKEN_K2"
if [ -z "$HELLO_K1" ] || [ -z "$HELLO_K2" ] || [ -z "$BROKEN_K1" ] || [ -z "$BROKEN_K2" ]; then
  for key in $(objects "$FLAT"); do echo "    $key: $(describe "$FLAT/$key")"; done
  echo "  (the objects are not what the remote cache promises: the scenarios below need them)"
  stop_nginx
  finish
  exit
fi
check_eq "A: kmshello's object lists one module, 0-kmshello.ko" "0-kmshello.ko" \
  "$(object_field "$FLAT/$HELLO_K1" '[.modules[].file] | join(" ")')"
check "A: kmshello's object holds build.log" test -s "$WORK/unpacked.$$/build.log"
check_eq "A: kmsbroken's object: ok false, no modules" "false 0" \
  "$(object_field "$FLAT/$BROKEN_K1" '"\(.ok) \(.modules | length)"')"
check "A: kmsbroken's object keeps the first compiler error" \
  grep -q kmsbroken_no_such_symbol <<<"$(object_field "$FLAT/$BROKEN_K1" '.first_error')"
check "A: kmsbroken's object keeps its build log" grep -q kmsbroken_no_such_symbol "$WORK/unpacked.$$/build.log"
check_eq "A: the object's members" "build.log result.json" \
  "$(zstd -qdc "$FLAT/$BROKEN_K1" | tar -t | sort | paste -sd' ')"
installed "$RA" "$K1" A
installed "$RA" "$K2" A
DIGEST=$(store_digest)
run_sync a3 "$RA" --json
check_eq "A again: exit 1 (kmsbroken's failure, remembered)" 1 "$RC"
check_eq "A again: kmshello up to date" "up-to-date up-to-date" "$(jfield kmshello "$K1" status) $(jfield kmshello "$K2" status)"
check_eq "A again: nothing compiled" "" "$(compiled_cells)"
check_eq "A again: no PUT (nothing was built)" 0 "$(requests PUT)"
check_eq "A again: the server's objects are unchanged" "$DIGEST" "$(store_digest)"

# === 2. a read-only client gets everything from the server ==============================
phase "2. root B (another directory, read-only): everything from the remote cache"
RB=$WORK/roots/second-client/b
new_root "$RB" "$K1 $K2" "kmshello kmsbroken" "remote_cache = $URL" "remote_cache_read_only = yes"
DIGEST=$(store_digest)
run_sync b "$RB" --json
check_eq "B: exit 1 (kmsbroken's remembered failure counts)" 1 "$RC"
for kv in "$K1" "$K2"; do
  check_eq "B, $kv: kmshello installed" installed "$(jfield kmshello "$kv" status)"
  check_eq "B, $kv: kmshello's reason" "installed from the remote cache" "$(jfield kmshello "$kv" reason)"
  check_eq "B, $kv: kmsbroken failed" failed "$(jfield kmsbroken "$kv" status)"
  check_eq "B, $kv: kmsbroken's failure is remembered" true "$(jfield kmsbroken "$kv" remembered)"
  check "B, $kv: kmsbroken's first error is the remote build's" \
    grep -q kmsbroken_no_such_symbol <<<"$(jfield kmsbroken "$kv" first_error)"
  installed "$RB" "$kv" B
  check_eq "B, $kv: the same module file as A's" "$(module_sha "$RA" "$kv" kmshello)" "$(module_sha "$RB" "$kv" kmshello)"
done
check_eq "B: nothing compiled" "" "$(compiled_cells)"
check "B: it asked the server (GETs logged)" test "$(requests GET)" -ge 4
check_eq "B: no PUT (read-only)" 0 "$(requests PUT)"
check_eq "B: the server's objects are unchanged" "$DIGEST" "$(store_digest)"
check_eq "B: still four objects" 4 "$(object_count "$FLAT")"
check_eq "B: status records the cells" \
  "$(printf '%s\n' "kmsbroken/1.0 $K1 failed" "kmsbroken/1.0 $K2 failed" "kmshello/1.0 $K1 installed" \
    "kmshello/1.0 $K2 installed" | sort | paste -sd,)" "$(matrix "$RB")"

phase "6. root B: sync --retry compiles the failure the remote cache remembers"
run_sync b-retry "$RB" --json --retry
check_eq "B --retry: exit 1 (kmsbroken still fails)" 1 "$RC"
check_eq "B --retry: kmsbroken compiled for both kernels, kmshello not" "kmsbroken/$K1 kmsbroken/$K2" "$(compiled_cells)"
for kv in "$K1" "$K2"; do
  check_eq "B --retry, $kv: kmsbroken failed" failed "$(jfield kmsbroken "$kv" status)"
  check_eq "B --retry, $kv: not a remembered failure" false "$(jfield kmsbroken "$kv" remembered)"
  check_eq "B --retry, $kv: the reason is make's" "make failed (exit status 2)" "$(jfield kmsbroken "$kv" reason)"
done
check_eq "B --retry: no PUT (read-only)" 0 "$(requests PUT)"
check_eq "B --retry: the server's objects are unchanged" "$DIGEST" "$(store_digest)"

# === 3. damaged objects are rejected, rebuilt and replaced ================================
phase "3. damaged objects: root C rejects, builds and replaces them; root D is served again"
# kmshello for K1: 32 bytes of the zstd stream flipped.
size=$(stat -c %s "$FLAT/$HELLO_K1")
head -c 32 /dev/zero | tr '\0' '\377' |
  dd of="$FLAT/$HELLO_K1" bs=1 seek=$((size / 2)) conv=notrunc status=none
# kmshello for K2: a whole tar and result.json, but the module differs from its sha256
# (bytes appended: still an ELF file with the right vermagic).
unpack "$FLAT/$HELLO_K2" "$WORK/tamper"
members=$(zstd -qdc "$FLAT/$HELLO_K2" | tar -t)
printf 'tampered' >>"$WORK/tamper/0-kmshello.ko"
# shellcheck disable=SC2086
(cd "$WORK/tamper" && tar -c $members | zstd -q -o "$FLAT/$HELLO_K2.new" && mv "$FLAT/$HELLO_K2.new" "$FLAT/$HELLO_K2")
# kmsbroken for K1: truncated.
truncate -s $(($(stat -c %s "$FLAT/$BROKEN_K1") / 2)) "$FLAT/$BROKEN_K1"
check_eq "control: the flipped object is bad" bad "$(describe "$FLAT/$HELLO_K1")"
check_eq "control: the tampered object is bad" bad "$(describe "$FLAT/$HELLO_K2")"
check "control: the tampered object is a whole tar with the right vermagic" test \
  "$(modinfo -F vermagic "$WORK/tamper/0-kmshello.ko" | cut -d' ' -f1)" = "$K2"
check_eq "control: the truncated object is bad" bad "$(describe "$FLAT/$BROKEN_K1")"
DAMAGED=$(store_digest)

RC_ROOT=$WORK/roots/c
new_root "$RC_ROOT" "$K1 $K2" "kmshello kmsbroken" "remote_cache = $URL"
run_sync c "$RC_ROOT" --json
check_eq "C: exit 1 (kmsbroken fails)" 1 "$RC"
check_note "C: a note rejects kmshello's object for $K1" rejected_note kmshello "$K1"
check_note "C: a note rejects kmshello's object for $K2" rejected_note kmshello "$K2"
check_note "C: a note rejects kmsbroken's object for $K1" rejected_note kmsbroken "$K1"
check_eq "C: three rejections" 3 "$(rejected_notes)"
# The damaged objects' bytes must not reach the terminal: the notes are UTF-8 text without
# control characters (a flipped zstd stream decodes to tar headers with arbitrary names).
check "C: the notes are valid UTF-8" iconv -f UTF-8 -t UTF-8 -o /dev/null "$ERR"
check_eq "C: the notes hold no control character" 0 "$(grep -caP '[\x00-\x08\x0b-\x1f\x7f]' "$ERR")"
check_eq "C: the three rejected cells were compiled, not kmsbroken for $K2" \
  "kmsbroken/$K1 kmshello/$K1 kmshello/$K2" "$(compiled_cells)"
for kv in "$K1" "$K2"; do
  check_eq "C, $kv: kmshello installed" installed "$(jfield kmshello "$kv" status)"
  check "C, $kv: kmshello's reason says built" grep -qE '^built in [0-9.]+ s$' <<<"$(jfield kmshello "$kv" reason)"
  installed "$RC_ROOT" "$kv" C
done
check_eq "C, $K1: kmsbroken failed by its own build" "failed false" \
  "$(jfield kmsbroken "$K1" status) $(jfield kmsbroken "$K1" remembered)"
check_eq "C, $K2: kmsbroken's failure from the remote cache" "failed true" \
  "$(jfield kmsbroken "$K2" status) $(jfield kmsbroken "$K2" remembered)"
check_eq "C: three PUTs (the rebuilt cells)" 3 "$(requests PUT)"
check_eq "C: still four objects" 4 "$(object_count "$FLAT")"
check_eq "C: kmshello for $K1 replaced by a good object" "kmshello $K1" "$(describe "$FLAT/$HELLO_K1")"
check_eq "C: kmshello for $K2 replaced by a good object" "kmshello $K2" "$(describe "$FLAT/$HELLO_K2")"
check_eq "C: kmsbroken for $K1 replaced by a whole failure" failed "$(describe "$FLAT/$BROKEN_K1")"
check_eq "C: kmsbroken for $K2 untouched" failed "$(describe "$FLAT/$BROKEN_K2")"
check "C: the store changed" test "$DAMAGED" != "$(store_digest)"

RD=$WORK/roots/d
new_root "$RD" "$K1 $K2" "kmshello kmsbroken" "remote_cache = $URL"
DIGEST=$(store_digest)
run_sync d "$RD" # the text output
check_eq "D: exit 1 (kmsbroken's remembered failure)" 1 "$RC"
check_eq "D: nothing compiled" "" "$(compiled_cells)"
for kv in "$K1" "$K2"; do
  check "D, $kv: the text output says installed from the remote cache" \
    grep -qF "installed   kmshello/1.0 for $kv: installed from the remote cache" "$OUT"
  installed "$RD" "$kv" D
done
check "D: no rejection noted" test "$(rejected_notes)" -eq 0
check_eq "D: no PUT (nothing was built)" 0 "$(requests PUT)"
check_eq "D: the server's objects are unchanged" "$DIGEST" "$(store_digest)"

# === 3b. an object whose tar names files outside its entry ===============================
phase "3b. kmshello's object for $K1 with members ../../../../NAME and $WORK/NAME: root G"
ESCAPE=escaped-member-$$
unpack "$FLAT/$HELLO_K1" "$WORK/evil"
members=$(zstd -qdc "$FLAT/$HELLO_K1" | tar -t)
echo "must not be written" >"$WORK/evil/$ESCAPE"
echo "must not be written" >"$WORK/evil/abs-$ESCAPE"
# shellcheck disable=SC2086
(cd "$WORK/evil" &&
  tar -c -P -f "$WORK/evil.tar" --transform "s,^$ESCAPE\$,../../../../$ESCAPE," $members "$ESCAPE" &&
  tar -r -P -f "$WORK/evil.tar" --transform "s,^abs-$ESCAPE\$,$WORK/abs-$ESCAPE," "abs-$ESCAPE")
rm -f "$WORK/evil/$ESCAPE" "$WORK/evil/abs-$ESCAPE"
check_eq "control: the tar names ../../../../$ESCAPE and $WORK/abs-$ESCAPE" 2 \
  "$(tar -t -P -f "$WORK/evil.tar" | grep -cxF -e "../../../../$ESCAPE" -e "$WORK/abs-$ESCAPE")"
zstd -q -f "$WORK/evil.tar" -o "$FLAT/$HELLO_K1"
RG=$WORK/roots/g
new_root "$RG" "$K1" "kmshello" "remote_cache = $URL"
run_sync g "$RG" --json
check_eq "G: exit 0" 0 "$RC"
check_eq "G: nothing named $ESCAPE written anywhere in the work directory" "" \
  "$(find "$WORK" -name "*$ESCAPE" -not -path "$WORK/out/*" | paste -sd' ')"
check_eq "G: kmshello for $K1 compiled (the object was not used)" "kmshello/$K1" "$(compiled_cells)"
check "G: built" grep -qE '^built in [0-9.]+ s$' <<<"$(jfield kmshello "$K1" reason)"
check_note "G: a note rejects kmshello's object for $K1" rejected_note kmshello "$K1"
installed "$RG" "$K1" G
check_eq "G: the object is replaced by a good one" "kmshello $K1" "$(describe "$FLAT/$HELLO_K1")"

# === 4. an object of the other kernel under a key ========================================
phase "4. kmshello built for $K1 stored under $K2's key: root E rejects it (vermagic)"
cp "$FLAT/$HELLO_K1" "$FLAT/$HELLO_K2"
check_eq "control: the swapped object is whole, its sha256 consistent, built for $K1" "kmshello $K1" \
  "$(describe "$FLAT/$HELLO_K2")"
RE=$WORK/roots/e-wrong-kernel
new_root "$RE" "$K1 $K2" "kmshello" "remote_cache = $URL"
run_sync e "$RE" --json
check_eq "E: exit 0" 0 "$RC"
check_note "E: a note rejects kmshello's object for $K2" rejected_note kmshello "$K2"
check "E: the note says why: vermagic" grep -qi 'vermagic' <<<"$(grep -i 'rejected' "$ERR")"
check_eq "E: one rejection" 1 "$(rejected_notes)"
check_eq "E, $K1: from the remote cache" "installed from the remote cache" "$(jfield kmshello "$K1" reason)"
check "E, $K2: built" grep -qE '^built in [0-9.]+ s$' <<<"$(jfield kmshello "$K2" reason)"
check_eq "E: only kmshello for $K2 compiled" "kmshello/$K2" "$(compiled_cells)"
installed "$RE" "$K1" E
installed "$RE" "$K2" E
check_eq "E: one PUT" 1 "$(requests PUT)"
check_eq "E: $K2's key holds kmshello built for $K2 again" "kmshello $K2" "$(describe "$FLAT/$HELLO_K2")"

# === 7. the subdirs layout ===============================================================
phase "7. remote_cache_layout = subdirs: KEY[0:2]/KEY[2:], the same build key"
SUBPREFIX=kmodsync/sub
SUB=$STORE/$SUBPREFIX
RS1=$WORK/roots/s1
new_root "$RS1" "$K1" "kmshello" "remote_cache = $BASE/$SUBPREFIX" "remote_cache_layout = subdirs"
run_sync s1 "$RS1" --json
check_eq "S1: exit 0" 0 "$RC"
check "S1: built" grep -qE '^built in [0-9.]+ s$' <<<"$(jfield kmshello "$K1" reason)"
check_eq "S1: the object is KEY[0:2]/KEY[2:] of kmshello's key for $K1" "${HELLO_K1:0:2}/${HELLO_K1:2}" \
  "$(objects "$SUB" | paste -sd' ')"
check_eq "S1: it holds kmshello built for $K1" "kmshello $K1" "$(describe "$SUB/${HELLO_K1:0:2}/${HELLO_K1:2}")"
RS2=$WORK/roots/s2
new_root "$RS2" "$K1" "kmshello" "remote_cache = $BASE/$SUBPREFIX/" "remote_cache_layout = subdirs" \
  "remote_cache_read_only = yes"
run_sync s2 "$RS2" --json
check_eq "S2: exit 0" 0 "$RC"
check_eq "S2: from the remote cache" "installed from the remote cache" "$(jfield kmshello "$K1" reason)"
check_eq "S2: nothing compiled" "" "$(compiled_cells)"
check "S2: it asked for KEY[0:2]/KEY[2:]" grep -qF "\"GET /$SUBPREFIX/${HELLO_K1:0:2}/${HELLO_K1:2} HTTP" <<<"$NEW_ACCESS"
installed "$RS2" "$K1" S2

# === 5. an unreachable server ============================================================
phase "5. an unreachable server: root F builds as without a remote cache"
CLOSED=$(free_port)
RF=$WORK/roots/f
new_root "$RF" "$K1" "kmshello" "remote_cache = http://127.0.0.1:$CLOSED/kmodsync"
check "control: nothing listens on port $CLOSED" refute_open "$CLOSED"
run_sync f "$RF" --json
check_eq "F: exit 0 (as without a remote cache)" 0 "$RC"
check "F: built" grep -qE '^built in [0-9.]+ s$' <<<"$(jfield kmshello "$K1" reason)"
check_eq "F: compiled" "kmshello/$K1" "$(compiled_cells)"
check_note "F: a note on stderr mentions the remote cache" grep -qi 'remote cache' "$ERR"
check "F: no error in the report" test "$(jq -r '.errors | length' "$OUT" 2>/dev/null)" = 0
check "F: the pass did not hang (under 60 s)" test "$SYNC_SECONDS" -lt 60
installed "$RF" "$K1" F
RF2=$WORK/roots/f-broken
new_root "$RF2" "$K1" "kmshello kmsbroken" "remote_cache = http://127.0.0.1:$CLOSED/kmodsync"
run_sync f2 "$RF2" # the text output
check_eq "F with kmsbroken (text output): exit 1 (as without a remote cache)" 1 "$RC"
check_eq "F with kmsbroken: both compiled" "kmsbroken/$K1 kmshello/$K1" "$(compiled_cells)"
check "F with kmsbroken: kmshello reported built" grep -qE "^ *installed +kmshello/1.0 for $(ere "$K1"): built in" "$OUT"
check_note "F with kmsbroken: a note on stderr mentions the remote cache" grep -qi 'remote cache' "$ERR"

# === 5b. no libcurl ========================================================================
# libcurl is opened when a remote cache is first used, not linked: without it a pass builds
# as without a remote cache and says why. A private mount namespace hides the library.
phase "5b. libcurl missing: root H builds as without a remote cache, and says so"
check "control: kmodsync is not linked with libcurl" not_linked_with_curl
HIDE=$WORK/without-libcurl
cat >"$HIDE" <<'WRAPPER'
#!/bin/bash
# without-libcurl COMMAND...: COMMAND in a mount namespace where libcurl reads as empty.
exec unshare -m bash -c '
  for lib in $(readlink -f /usr/lib/*/libcurl.so.4 /usr/lib/*/libcurl-gnutls.so.4 2>/dev/null | sort -u); do
    mount --bind /dev/null "$lib" || exit 125
  done
  exec "$@"' without-libcurl "$@"
WRAPPER
chmod +x "$HIDE"
check "control: curl(1) cannot start where libcurl is hidden" not "$HIDE" curl --version
check "control: curl(1) starts outside" curl --version
RH=$WORK/roots/h
new_root "$RH" "$K1" "kmshello" "remote_cache = $URL"
DIGEST=$(store_digest)
RUN_WITH=("$HIDE")
run_sync h "$RH" --json
RUN_WITH=()
check_eq "H: exit 0 (as without a remote cache)" 0 "$RC"
check_eq "H: compiled" "kmshello/$K1" "$(compiled_cells)"
check_note "H: a note says libcurl cannot be loaded, for the remote cache" \
  bash -c "grep -i 'remote cache' '$ERR' | grep -qi 'libcurl cannot be loaded'"
check "H: no error in the report" test "$(jq -r '.errors | length' "$OUT" 2>/dev/null)" = 0
check_eq "H: no request reached the server" "" "$NEW_ACCESS"
check_eq "H: the server's objects are unchanged" "$DIGEST" "$(store_digest)"
installed "$RH" "$K1" H

stop_nginx
trap - EXIT
check_eq "nginx logged no error of its own (crit/alert/emerg)" 0 \
  "$(grep -cE '\[(crit|alert|emerg)\]' "$NGX/logs/error.log" || true)"
check_eq "host's /usr/lib/modules, /usr/src, /var/lib/kmodsync, nginx dirs unchanged" "$HOST_BEFORE" "$(host_snapshot)"
echo "  time  total: $((SECONDS - SUITE_START)) s"
finish
