# Checks on a root's installed modules and kmodsync's record of them, for the trigger
# suites (source after lib.sh).
# shellcheck shell=bash

# modules ROOT KV: the module names under updates/dkms, sorted, space-separated.
modules() {
  local dir=$1/usr/lib/modules/$2/updates/dkms
  [ -d "$dir" ] || return 0
  find "$dir" -name '*.ko*' -printf '%f\n' | sed -E 's/\.ko(\.(xz|zst|gz))?$//' | sort | paste -sd' '
}
module_file() { # ROOT KV NAME
  find "$1/usr/lib/modules/$2/updates/dkms" -name "$3.ko*" 2>/dev/null | head -n1
}
modinfo_of() { # ROOT KV NAME FIELD
  local file
  file=$(module_file "$1" "$2" "$3")
  [ -n "$file" ] && modinfo -F "$4" "$file" 2>/dev/null
}
in_modules_dep() { # ROOT KV NAME: how many modules.dep lines start with updates/dkms/NAME.ko
  grep -Ec "^updates/dkms/$3\.ko(\.(xz|zst|gz))?:" "$1/usr/lib/modules/$2/modules.dep" 2>/dev/null || true
}
# matrix ROOT: every recorded cell, "NAME/VERSION KV state", sorted, comma-separated.
matrix() {
  "$KMODSYNC" --root "$1" status --json 2>/dev/null |
    jq -r '.cells[] | "\(.module)/\(.version) \(.kernel) \(.state)"' | sort | paste -sd,
}
status_paths() { # ROOT NAME KV: the files status records for that cell
  "$KMODSYNC" --root "$1" status --json 2>/dev/null |
    jq -r --arg m "$2" --arg k "$3" '.cells[] | select(.module == $m and .kernel == $k) | .files[].path'
}
file_id() { stat -c '%i %Y' "$(module_file "$@")" 2>/dev/null; }
