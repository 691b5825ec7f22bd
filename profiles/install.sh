#!/usr/bin/env bash
# Install one of this checkout's Snakemake profiles as a *named* profile, so
# that `snakemake --profile slurm` works from any directory, as Slurm users
# type it. Snakemake looks a bare profile name up in the current directory,
# then in ${XDG_CONFIG_HOME:-~/.config}/snakemake/<name>, then in
# /etc/xdg/snakemake/<name>; this script writes the second.
#
#   profiles/install.sh              # = profiles/install.sh slurm
#   profiles/install.sh --link slurm # a symlink: follows `git pull`s of this checkout
#   make install-profile             # the same as the first line
#
# Default is a copy (keeps working if this checkout moves or is deleted; run
# the script again after updating the checkout). Re-running replaces a profile
# this script installed earlier; any other folder of that name is left alone
# unless --force is given (then it is moved to <name>.bak.<timestamp>).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=copy
force=0
names=()
for arg in "$@"; do
    case "$arg" in
        --link) mode=link ;;
        --copy) mode=copy ;;
        --force) force=1 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
        *) names+=("$arg") ;;
    esac
done
(( ${#names[@]} )) || names=(slurm)

config_home="${XDG_CONFIG_HOME:-}"
[[ "$config_home" == /* ]] || config_home="$HOME/.config"  # platformdirs ignores a relative one
dest_root="$config_home/snakemake"
MARKER=".installed-by-nvd"  # inside a copy: lets a re-run replace it

for name in "${names[@]}"; do
    src="$here/$name"
    if [[ "$name" == */* || ! -f "$src/config.yaml" ]]; then
        echo "install.sh: no profile '$name' here (expected $src/config.yaml)" >&2
        exit 2
    fi
    dest="$dest_root/$name"
    if [[ -e "$dest" || -L "$dest" ]]; then
        if [[ -L "$dest" && "$(readlink -f "$dest")" == "$src" ]] || [[ -f "$dest/$MARKER" ]]; then
            rm -rf "$dest"
        elif (( force )); then
            backup="$dest.bak.$(date +%Y%m%d%H%M%S)"
            mv "$dest" "$backup"
            echo "install.sh: moved the existing $dest to $backup" >&2
        else
            echo "install.sh: $dest exists and was not installed by this script; not replacing it (use --force: it is kept as $dest.bak.<timestamp>)" >&2
            exit 1
        fi
    fi
    mkdir -p "$dest_root"
    if [[ "$mode" == link ]]; then
        ln -s "$src" "$dest"
    else
        cp -R "$src" "$dest"
        printf 'copied from %s\n' "$src" >"$dest/$MARKER"
    fi
    echo "installed profile '$name' ($mode of $src) as $dest: use \`snakemake --profile $name\`"
done
