#!/usr/bin/env bash
# The documentation follows the binary: every command `kmodsync --help` lists and every
# option of every command's --help is in the man page (in that command's section) and in
# the README; the man page documents no command the binary lacks; every setting
# core/src/config.cpp accepts is in the man page, the README and the shipped
# packaging/kmodsync.conf, whose commented defaults the binary accepts; the man page renders
# without warnings; the bash completion offers the same commands and options and completes
# module names and kernel releases from a root.
# shellcheck disable=SC2086 # word lists ($commands, $keys...) are split on purpose
source "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$SRC/packaging/man/kmodsync.8
README=$SRC/README.md
CONF=$SRC/packaging/kmodsync.conf
COMPLETION=$SRC/packaging/completion/kmodsync.bash
require_tools groff

# has_word FILE WORD: WORD occurs in FILE not as part of a longer option or name.
has_word() {
  grep -qE -- "(^|[^A-Za-z0-9_-])$(printf '%s' "$2" | sed 's/[][\.*^$+?(){}|/]/\\&/g')([^A-Za-z0-9_-]|$)" "$1"
}

# The man page as text: no hyphenation, long lines, no overstriking.
groff -man -Tascii -rHY=0 -rLL=300n -P-cbou "$MAN" 2>/dev/null >"$WORK/man.txt"
# man_section HEADING: the text of one .SS (indented 3) or .SH (column 0) section.
man_section() {
  awk -v heading="$1" '
    /^[A-Z]/ || /^   [^ ]/ { on = ($0 == heading || $0 == "   " heading); next }
    on { print }' "$WORK/man.txt"
}

# --- rendering
check_eq "groff -man -ww renders the man page without warnings" "" "$(groff -man -ww -z "$MAN" 2>&1)"
if command -v mandoc >/dev/null 2>&1; then
  check_eq "mandoc -Tlint finds nothing in the man page" "" "$(mandoc -Tlint "$MAN" 2>&1)"
elif [ "${KMODSYNC_REQUIRE_ALL:-0}" = 1 ]; then
  fail "mandoc is not installed (apt-get install mandoc)"
else
  echo "  note  mandoc is not installed: its lint is not run"
fi
check "the man page has a NAME, SYNOPSIS and the other sections" bash -c "
  for s in NAME SYNOPSIS DESCRIPTION COMMANDS CONFIGURATION TRIGGERS FILES 'EXIT STATUS' ENVIRONMENT \
           EXAMPLES 'MIGRATING FROM DKMS' 'SEE ALSO'; do grep -qx \"\$s\" '$WORK/man.txt' || exit 1; done"

# --- commands and their options, from the binary
"$KMODSYNC" --help >"$WORK/help.txt" 2>&1
commands=$(awk '/^Subcommands:/ { on = 1; next } /^[^ ]/ { on = 0 } on && /^  [a-z]/ { print $1 }' "$WORK/help.txt")
check "kmodsync --help lists commands" test -n "$commands"
# options HELP-FILE: the options of an --help output, one per line (-k and --kernel apart).
options() {
  awk '/^Options:/ { on = 1; next } /^[^ ]/ { on = 0 } on && /^  +-/ { print $1 }' "$1" | tr ',' '\n' | grep '^-'
}
global_options=$(options "$WORK/help.txt")
missing=""
for option in $global_options; do
  man_section "GLOBAL OPTIONS" | has_word /dev/stdin "$option" || missing+=" $option"
done
check_eq "every global option is in the man page's GLOBAL OPTIONS" "" "$missing"
missing=""
for option in $global_options; do
  has_word "$README" "$option" || missing+=" $option"
done
check_eq "every global option is in the README" "" "$missing"

for command in $commands; do
  "$KMODSYNC" "$command" --help >"$WORK/help-$command.txt" 2>&1
  if [ "$command" = dkms ]; then
    section=$(man_section "DKMS COMMAND LINE")
  else
    section=$(man_section "$command")
  fi
  check "man page: a section for \`$command\`" test -n "$section"
  check "README: \`kmodsync $command\` in the usage" grep -qE "^kmodsync( \[[^]]*\])* $command( |\$)" "$README"
  missing_man="" missing_readme=""
  for option in $(options "$WORK/help-$command.txt"); do
    case $option in
      -h | --help) has_word "$WORK/man.txt" "$option" || missing_man+=" $option" ;;
      *) printf '%s\n' "$section" | has_word /dev/stdin "$option" || missing_man+=" $option" ;;
    esac
    has_word "$README" "$option" || missing_readme+=" $option"
  done
  check_eq "man page: every option of \`$command\` in its section" "" "$missing_man"
  check_eq "README: every option of \`$command\`" "" "$missing_readme"
done

# The man page documents no command the binary lacks. PENDING: commands documented ahead
# of the binary while they are being written (none now); once --help lists them they
# are checked like the others, and a name here that --help lists is simply ignored.
pending=""
check_eq "--help lists log and doctor (documented in the man page and README)" "doctor log" \
  "$(printf '%s\n' $commands | grep -xE 'log|doctor' | sort | tr '\n' ' ' | sed 's/ $//')"
documented=$(awk '/^[A-Z]/ { on = ($0 == "COMMANDS"); next } on && /^   [a-z]/ { print $1 }' "$WORK/man.txt")
extra=""
for command in $documented; do
  printf '%s\n' $commands | grep -qx -- "$command" && continue
  if printf '%s\n' $pending | grep -qx -- "$command"; then
    echo "  note  \`$command\` is documented but not in this kmodsync yet (pending)"
  else
    extra+=" $command"
  fi
done
check_eq "the man page has no command kmodsync lacks" "" "$extra"
missing=""
for command in $commands; do
  printf '%s\n' $documented | grep -qx -- "$command" || missing+=" $command"
done
check_eq "the man page's COMMANDS section has every command of --help" "" "$missing"

# --- settings: every `key == "..."` of config.cpp, and the framework.conf keys it reads
keys=$(grep -oE 'key == "[a-z_]+"' "$SRC/core/src/config.cpp" | sed -E 's/.*"(.*)"/\1/')
framework_keys=$(grep -oE 'contains\("[a-z_]+"\)' "$SRC/core/src/config.cpp" | sed -E 's/.*"(.*)".*/\1/' | sort -u)
check "config.cpp yields the settings (more than ten)" test "$(echo "$keys" | wc -l)" -gt 10
check "config.cpp yields the framework.conf keys" test -n "$framework_keys"
missing_man="" missing_readme="" missing_conf=""
for key in $keys $framework_keys; do
  man_section CONFIGURATION | has_word /dev/stdin "$key" || missing_man+=" $key"
  has_word "$README" "$key" || missing_readme+=" $key"
done
for key in $keys; do
  [ "$(grep -cE "^#$key = ?" "$CONF")" = 1 ] || missing_conf+=" $key"
done
check_eq "man page CONFIGURATION: every setting and framework.conf key" "" "$missing_man"
check_eq "README: every setting and framework.conf key" "" "$missing_readme"
check_eq "packaging/kmodsync.conf: every setting once, commented out at its default" "" "$missing_conf"
unknown=""
for key in $(grep -oE '^#?[a-z_]+ =' "$CONF" | tr -d '#=' ); do
  printf '%s\n' $keys | grep -qx "$key" || unknown+=" $key"
done
check_eq "packaging/kmodsync.conf has no setting kmodsync lacks" "" "$unknown"
check_eq "packaging/kmodsync.conf sets nothing (every setting commented out)" "" "$(grep -vE '^(#|$)' "$CONF")"

R=$(readlink -f "$WORK")/root
mkdir -p "$R/usr/src" "$R/usr/lib/modules" "$R/etc/kmodsync"
ln -s usr/lib "$R/lib"
dry_run() { "$KMODSYNC" --root "$R" sync --dry-run >"$WORK/dry-run.txt" 2>&1; }
cp "$CONF" "$R/etc/kmodsync/kmodsync.conf"
dry_run
check_eq "the shipped kmodsync.conf loads as is (sync --dry-run exits 0)" 0 $?
# Each setting uncommented with its documented default.
for key in $keys; do
  grep -E "^#$key = ?" "$CONF" | sed 's/^#//'
done >"$R/etc/kmodsync/kmodsync.conf"
check_eq "every setting is written out" "$(echo "$keys" | wc -l)" "$(wc -l <"$R/etc/kmodsync/kmodsync.conf")"
dry_run
status=$?
check "kmodsync accepts every documented default (no \"unknown setting\")" bash -c "! grep -q 'unknown setting' '$WORK/dry-run.txt'"
check_eq "sync --dry-run with every setting written out exits 0" 0 "$status"
echo "no_such_setting = 1" >>"$R/etc/kmodsync/kmodsync.conf"
dry_run
status=$?
check "an unknown setting is refused, naming it (the check above can fail)" grep -q 'unknown setting "no_such_setting"' "$WORK/dry-run.txt"
check_eq "... with exit status 2" 2 "$status"
rm -f "$R/etc/kmodsync/kmodsync.conf"

# --- README
check "README keeps the two Try-it commands" bash -c "grep -qx 'bash scripts/demo.sh .*' '$README' && grep -qx 'bash scripts/test.sh .*' '$README'"
check "README points to the man page and the shipped config" bash -c "grep -q 'kmodsync(8)' '$README' && grep -q 'packaging/kmodsync.conf' '$README'"
check "README has a Migrating from DKMS section" grep -qx '## Migrating from DKMS' "$README"

# --- bash completion
# complete WORD...: what the completion offers for the last word, one per line, sorted.
complete_words() {
  KMODSYNC_ROOT=${COMPLETE_ROOT:-} bash -c '
    source "$1" || exit 1
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    _kmodsync
    printf "%s\n" "${COMPREPLY[@]}"' completion "$COMPLETION" "$@" | sort -u | grep .
}
check_eq "the bash completion sources without error or output" "" "$(bash -c "source '$COMPLETION'" 2>&1)"
if [ -f /usr/share/bash-completion/bash_completion ]; then
  check_eq "... and with bash-completion loaded" "" \
    "$(bash -c "source /usr/share/bash-completion/bash_completion; source '$COMPLETION'; complete -p kmodsync >/dev/null" 2>&1)"
elif [ "${KMODSYNC_REQUIRE_ALL:-0}" = 1 ]; then
  fail "bash-completion is not installed"
fi
check_eq "\`kmodsync s\` completes to sync and status" "$(printf 'status\nsync')" "$(complete_words kmodsync s)"
offered=$(complete_words kmodsync '')
missing="" extra=""
for command in $commands; do
  printf '%s\n' "$offered" | grep -qx -- "$command" || missing+=" $command"
done
for command in $offered; do
  printf '%s\n' $commands $pending | grep -qx -- "$command" || extra+=" $command"
done
check_eq "\`kmodsync \` offers every command of --help" "" "$missing"
check_eq "\`kmodsync \` offers no command kmodsync lacks" "" "$extra"
check_eq "\`kmodsync -\` offers the global options" "$(printf '%s\n' $global_options | sort | tr '\n' ' ')" \
  "$(complete_words kmodsync - | tr '\n' ' ')"
for command in $commands; do
  [ "$command" = dkms ] && offered=$(complete_words kmodsync dkms -) || offered=$(complete_words kmodsync "$command" -)
  missing=""
  for option in $(options "$WORK/help-$command.txt"); do
    printf '%s\n' "$offered" | grep -qx -- "$option" || missing+=" $option"
  done
  check_eq "\`kmodsync $command -\` offers every option of its --help" "" "$missing"
done
mkdir -p "$R/usr/src/acpi-call-1.2.2" "$R/usr/src/lime-forensics-1.9.1-5" "$R/usr/lib/modules/6.1.0-55-amd64"
touch "$R/usr/src/acpi-call-1.2.2/dkms.conf" "$R/usr/src/lime-forensics-1.9.1-5/dkms.conf"
check_eq "\`sync -m ac\` completes module names from the root" "$(printf 'acpi-call\nacpi-call/1.2.2')" \
  "$(complete_words kmodsync --root "$R" sync -m ac)"
check_eq "\`remove l\` completes NAME/VERSION (first - before a digit)" "lime-forensics/1.9.1-5" \
  "$(complete_words kmodsync --root "$R" remove l)"
check_eq "\`sync -k 6\` completes kernel releases from the root" "6.1.0-55-amd64" \
  "$(complete_words kmodsync --root "$R" sync -k 6)"
check_eq "\$KMODSYNC_ROOT is the root when --root is not given" "acpi-call/1.2.2" \
  "$(COMPLETE_ROOT=$R complete_words kmodsync uninstall a)"
check_eq "\`dkms -m li\` completes module names" "$(printf 'lime-forensics\nlime-forensics/1.9.1-5')" \
  "$(complete_words kmodsync --root "$R" dkms install -m li)"
check_eq "\`add /usr/s\` completes directories inside the root" "/usr/src/" \
  "$(complete_words kmodsync --root "$R" add /usr/s)"
check_eq "\`--root\` completes directories" "$R/" "$(complete_words kmodsync --root "$R" | sed 's|/*$|/|')"

# --- zsh completion: the same commands; its syntax when zsh is there
ZSH_COMPLETION=$SRC/packaging/completion/_kmodsync
zsh_commands=$(sed -nE "s/^    '([a-z-]+):.*/\1/p" "$ZSH_COMPLETION")
missing="" extra=""
for command in $commands; do
  printf '%s\n' $zsh_commands | grep -qx -- "$command" || missing+=" $command"
done
for command in $zsh_commands; do
  printf '%s\n' $commands $pending | grep -qx -- "$command" || extra+=" $command"
done
check_eq "the zsh completion lists every command of --help" "" "$missing"
check_eq "the zsh completion lists no command kmodsync lacks" "" "$extra"
for command in $commands; do
  missing=""
  for option in $(options "$WORK/help-$command.txt"); do
    has_word "$ZSH_COMPLETION" "$option" || missing+=" $option"
  done
  check_eq "the zsh completion knows every option of \`$command\`" "" "$missing"
done
if command -v zsh >/dev/null 2>&1; then
  check "the zsh completion parses (zsh -n)" zsh -n "$ZSH_COMPLETION"
fi

finish
