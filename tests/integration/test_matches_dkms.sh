#!/usr/bin/env bash
# DKMS 3.0.10 is the reference: for the same real module sources and real headers, every
# cell kmodsync installs DKMS installs too and the other way round, failures are the same
# cells, DKMS's own skips (AUTOINSTALL) are kmodsync's skips, and the installed modules
# agree on the modinfo fields that identify them.
#
# DKMS runs in throwaway trees (--dkmstree/--sourcetree/--installtree). Where DKMS 3.0.10
# ignores those options it is fenced in too: depmod through a wrapper adding -b, the MOK
# key and temp files inside the work directory.
source "$(dirname "$0")/lib.sh"

K1=6.1.0-55-amd64
K2=6.12.107+deb12-amd64
PACKAGES=(v4l2loopback-dkms acpi-call-dkms vpoll-dkms openrazer-driver-dkms lime-forensics-dkms)
require_tools dkms jq make gcc depmod modinfo apt-get dpkg-deb
require_headers "$K1" "$K2"
fetch_sources "${PACKAGES[@]}"

# --- DKMS
T=$(readlink -f "$WORK")/dkms
mkdir -p "$T/tree" "$T/src" "$T/tmp" "$T/bin" "$T/root/lib/modules/$K1" "$T/root/lib/modules/$K2"
stage=$(mktemp -d "$WORK/stage.XXXXXX")
for package in "${PACKAGES[@]}"; do dpkg-deb -x "$CORPUS_DIR/${package}"_*.deb "$stage"; done
cp -a "$stage/usr/src/." "$T/src/"
depmod_bin=$(command -v depmod)
printf '#!/bin/sh\nexec %s -b %s "$@"\n' "$depmod_bin" "$T/root" >"$T/bin/depmod"
chmod +x "$T/bin/depmod"
dkms_run() {
  env PATH="$T/bin:$PATH" TMPDIR="$T/tmp" sign_file="$T/no-sign-file" \
    mok_signing_key="$T/mok.key" mok_certificate="$T/mok.pub" \
    dkms --dkmstree "$T/tree" --sourcetree "$T/src" --installtree "$T/root/lib/modules" "$@"
}
for source in "$T"/src/*/; do
  dkms_run add "${source%/}" >>"$WORK/dkms-add.log" 2>&1
done
for kv in "$K1" "$K2"; do
  dkms_run autoinstall -k "$kv" --kernelsourcedir "/usr/src/linux-headers-$kv" >"$WORK/dkms-autoinstall-$kv.log" 2>&1
  echo "  (dkms autoinstall -k $kv exited $?)"
done
dkms_run status >"$WORK/dkms-status.txt" 2>&1

# --- kmodsync
R=$WORK/root
make_root "$R" "$K1" "$K2"
add_sources "$R" "${PACKAGES[@]}"
"$KMODSYNC" --root "$R" sync --json >"$WORK/kmodsync.json"

dkms_installed() { grep -q "^$1/$2, $3, [^:]*: installed" "$WORK/dkms-status.txt"; }
dkms_module_file() { ls "$T/root/lib/modules/$1/updates/dkms/$2".ko* 2>/dev/null | head -n1; }
# The modinfo fields that identify a build, without the file name and signature.
identity() { modinfo "$1" | grep -E '^(name|vermagic|depends|srcversion|version|license|retpoline):' | sort; }

cells=$(jq -r '.cells[] | [.module, .version, .kernel, .status] | @tsv' "$WORK/kmodsync.json")
check "kmodsync reported cells" test -n "$cells"
while IFS=$'\t' read -r module version kernel status; do
  label="$module/$version on $kernel"
  case $status in
    installed)
      if dkms_installed "$module" "$version" "$kernel"; then
        pass "$label: installed by both"
      else
        fail "$label: kmodsync installed it, DKMS did not"
        continue
      fi
      for built in $(jq -r --arg m "$module" --arg k "$kernel" \
          '.cells[] | select(.module == $m and .kernel == $k) | .files[].path' <("$KMODSYNC" --root "$R" status --json)); do
        name=$(basename "$built"); name=${name%%.ko*}
        theirs=$(dkms_module_file "$kernel" "$name")
        if [ -z "$theirs" ]; then
          fail "$label: DKMS has no $name.ko"
        elif [ "$(identity "$R$built")" = "$(identity "$theirs")" ]; then
          pass "$label: $name.ko has the same name, vermagic, depends, srcversion as DKMS's"
        else
          fail "$label: $name.ko differs from DKMS's: $(diff <(identity "$R$built") <(identity "$theirs") | tr '\n' ' ')"
        fi
      done
      ;;
    failed)
      if dkms_installed "$module" "$version" "$kernel"; then
        fail "$label: DKMS installed it, kmodsync failed"
      elif grep -A1 -F "Bad return status for module build on kernel: $kernel " "$WORK/dkms-autoinstall-$kernel.log" \
           | grep -qF "/tree/$module/$version/build/make.log"; then
        pass "$label: fails with both"
      else
        fail "$label: kmodsync failed, DKMS reported no failure for it"
      fi
      ;;
    skipped)
      if dkms_installed "$module" "$version" "$kernel"; then
        fail "$label: DKMS installed it, kmodsync skipped it"
      elif grep -qF "/tree/$module/$version/build" "$WORK/dkms-autoinstall-$kernel.log"; then
        fail "$label: kmodsync skipped it, DKMS tried to build it"
      else
        pass "$label: skipped by both"
      fi
      ;;
    *) fail "$label: unexpected state $status" ;;
  esac
done <<<"$cells"
check_eq "DKMS installed no cell that kmodsync does not list" \
  "$(grep -c ': installed' "$WORK/dkms-status.txt")" \
  "$(jq '[.cells[] | select(.status == "installed")] | length' "$WORK/kmodsync.json")"

finish
