# bash completion for kmodsync(8) and its `dkms` name.           -*- shell-script -*-
# SPDX-License-Identifier: GPL-2.0-or-later
# Module names come from ROOT/usr/src/NAME-VERSION/ (split at the first `-` followed by a
# digit, as kmodsync does), kernel releases from ROOT/lib/modules/ and ROOT/usr/lib/modules/,
# where ROOT is --root, else $KMODSYNC_ROOT, else /.

_kmodsync_root()
{
    local i root=${KMODSYNC_ROOT:-/}
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --root) root=${COMP_WORDS[i + 1]:-$root} ;;
            --root=*) root=${COMP_WORDS[i]#--root=} ;;
        esac
    done
    printf '%s\n' "${root%/}"
}

# NAME/VERSION of every module source under ROOT/usr/src (with the bare NAMEs too when
# $2 is "names").
_kmodsync_modules()
{
    local root=$1 dir base i name version
    for dir in "$root"/usr/src/*-*/; do
        [ -d "$dir" ] || continue
        base=${dir%/}
        base=${base##*/}
        name=$base version=
        for ((i = 0; i + 1 < ${#base}; i++)); do
            if [ "${base:i:1}" = - ] && [[ ${base:i+1:1} == [0-9] ]]; then
                name=${base:0:i} version=${base:i+1}
                break
            fi
        done
        [ -n "$version" ] || continue
        [ "${2:-}" = names ] && printf '%s\n' "$name"
        printf '%s\n' "$name/$version"
    done
}

_kmodsync_kernels()
{
    local root=$1 dir
    for dir in "$root"/usr/lib/modules/*/ "$root"/lib/modules/*/; do
        [ -d "$dir" ] || continue
        dir=${dir%/}
        printf '%s\n' "${dir##*/}"
    done | sort -u
}

# _kmodsync_reply WORDS CUR: the WORDS (blank-separated) that start with CUR.
_kmodsync_reply()
{
    local IFS=$' \t\n'
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

_kmodsync_dkms()
{
    local cur=$1 prev=$2 root=$3
    local actions="add build install uninstall unbuild remove status autoinstall match mktarball
        ldtarball kernel_preinst kernel_postinst kernel_prerm"
    local options="-m --module -v -k --kernelver -a --arch --all --force -j -q --quiet --verbose
        --no-depmod --kernelsourcedir --dkmstree --sourcetree --installtree --root
        --templatekernel --archive --binaries-only --source-only -V --version --no-initrd
        --no-prepare-kernel --no-clean-kernel --force-version-override --rpm_safe_upgrade
        --symlink-modules --modprobe-on-install --debug -c --config --directive -h --help"
    case $prev in
        -m | --module) _kmodsync_reply "$(_kmodsync_modules "$root" names)" "$cur"; return ;;
        -k | --kernelver | --templatekernel) _kmodsync_reply "$(_kmodsync_kernels "$root")" "$cur"; return ;;
        --kernelsourcedir | --dkmstree | --sourcetree | --installtree | --root)
            mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
        --archive | -c | --config) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
        -v | -a | --arch | -j | --directive) return ;;
    esac
    if [[ $cur == -* ]]; then
        _kmodsync_reply "$options" "$cur"
    else
        _kmodsync_reply "$actions $(_kmodsync_modules "$root")" "$cur"
    fi
}

_kmodsync()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="sync status log doctor add remove uninstall kernel-remove keygen cache dkms"
    local root command='' i positional=0
    root=$(_kmodsync_root)

    if [ "${COMP_WORDS[0]##*/}" = dkms ]; then
        _kmodsync_dkms "$cur" "$prev" "$root"
        return
    fi
    # The command: the first word that is neither an option nor an option's argument;
    # the words after it that are neither count as positional.
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --root | -k | --kernel | -m | --module | -j | --jobs | --build-timeout) ((i++)) ;;
            -*) ;;
            *)
                if [ -z "$command" ]; then
                    command=${COMP_WORDS[i]}
                    [ "$command" = dkms ] && break
                else
                    ((positional++))
                fi
                ;;
        esac
    done

    if [ -z "$command" ]; then
        case $prev in
            --root) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
        esac
        if [[ $cur == -* ]]; then
            _kmodsync_reply "--root -v --verbose --version -h --help" "$cur"
        else
            _kmodsync_reply "$commands" "$cur"
        fi
        return
    fi

    case $command in
        sync)
            case $prev in
                -k | --kernel) _kmodsync_reply "$(_kmodsync_kernels "$root")" "$cur"; return ;;
                -m | --module) _kmodsync_reply "$(_kmodsync_modules "$root" names)" "$cur"; return ;;
                -j | --jobs | --build-timeout) return ;;
            esac
            _kmodsync_reply "-k --kernel -m --module -j --jobs -n --dry-run --retry --force
                --build-timeout --lines --json -h --help" "$cur"
            ;;
        status | keygen)
            _kmodsync_reply "--json -h --help" "$cur"
            ;;
        log)
            if [[ $cur == -* ]]; then
                _kmodsync_reply "--path --json -h --help" "$cur"
            elif ((positional == 0)); then
                _kmodsync_reply "$(_kmodsync_modules "$root" names)" "$cur"
            elif ((positional == 1)); then
                _kmodsync_reply "$(_kmodsync_kernels "$root")" "$cur"
            fi
            ;;
        doctor)
            case $prev in
                -k | --kernel) _kmodsync_reply "$(_kmodsync_kernels "$root")" "$cur"; return ;;
            esac
            _kmodsync_reply "-k --kernel --json -h --help" "$cur"
            ;;
        add)
            if [[ $cur == -* ]]; then
                _kmodsync_reply "--json -h --help" "$cur"
            else
                # Paths as seen inside the root (absolute there).
                local IFS=$'\n' dir
                COMPREPLY=()
                if [ -z "$root" ]; then
                    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
                else
                    for dir in $(compgen -d -- "$root/${cur#/}"); do
                        COMPREPLY+=("${dir#"$root"}/")
                    done
                    compopt -o nospace 2>/dev/null
                fi
            fi
            ;;
        remove | uninstall)
            if [[ $cur == -* ]]; then
                _kmodsync_reply "--json -h --help" "$cur"
            elif ((positional == 0)); then
                _kmodsync_reply "$(_kmodsync_modules "$root")" "$cur"
            fi
            ;;
        kernel-remove)
            if [[ $cur == -* ]]; then
                _kmodsync_reply "--json -h --help" "$cur"
            elif ((positional == 0)); then
                _kmodsync_reply "$(_kmodsync_kernels "$root")" "$cur"
            fi
            ;;
        cache)
            if [[ $cur == -* ]]; then
                _kmodsync_reply "--json -h --help" "$cur"
            elif ((positional == 0)); then
                _kmodsync_reply "stats clear" "$cur"
            fi
            ;;
        dkms)
            _kmodsync_dkms "$cur" "$prev" "$root"
            ;;
    esac
}

complete -F _kmodsync kmodsync dkms
