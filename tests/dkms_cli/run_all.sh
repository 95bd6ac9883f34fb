#!/usr/bin/env bash
# Runs every DKMS command-line conformance suite against one implementation:
#   bash tests/dkms_cli/run_all.sh dkms            # real DKMS 3.0.10 (proves the tests)
#   bash tests/dkms_cli/run_all.sh build/core/kmodsync
# Exit 0 when every suite passed (or skipped), 1 otherwise.
set -u
impl=${1:?usage: $0 dkms|PATH-TO-kmodsync}
dir=$(cd "$(dirname "$0")" && pwd)
failed=()
for suite in "$dir"/test_*.sh; do
  name=$(basename "$suite" .sh)
  start=$SECONDS
  bash "$suite" "$impl" >"/tmp/kmodsync-dkms-cli-$name.log" 2>&1
  rc=$?
  case $rc in
    0) verdict=passed ;;
    77) verdict=skipped ;;
    *) verdict=FAILED; failed+=("$name") ;;
  esac
  printf '%-32s %-8s %3ss  %s\n' "$name" "$verdict" $((SECONDS - start)) "$(tail -n 1 "/tmp/kmodsync-dkms-cli-$name.log")"
  [ "$rc" = 0 ] || [ "$rc" = 77 ] || grep -E '^  FAIL' "/tmp/kmodsync-dkms-cli-$name.log" | sed 's/^/    /'
done
[ "${#failed[@]}" -eq 0 ]
