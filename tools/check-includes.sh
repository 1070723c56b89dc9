#!/usr/bin/env bash
# Checks the include rules of docs/design.md over every C, C++ and CUDA file:
#   base <- everything; io <- nn, rl, eval; nn <- rl; all of core <- cli, lua;
#   backends/backend.h (the contract) and backends, kernels <- base only;
#   vendors (cuda, hip, gpuemu) never include each other, only their shared
#   glue (backends/gpu) and the kernels' launchers; nothing in core includes
#   lua or cli, Lua or libffi headers, or a GPU vendor's header.
# A quoted include is resolved as the compilers do here: next to the file,
# then from core/, then from the repository root; one that resolves nowhere
# in the tree (a system or generated header) is not a rule's business.
# Prints FILE:LINE: what is broken, for each broken rule; exits 1 if any.
# Usage: tools/check-includes.sh [REPO_ROOT]
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$root"

# The room a path belongs to; empty for tests, tools and the like, which may
# include anything.
room_of() {
    case $1 in
    core/base/*) echo base ;;
    core/io/*) echo io ;;
    core/nn/*) echo nn ;;
    core/rl/*) echo rl ;;
    core/eval/*) echo eval ;;
    core/cli/*) echo cli ;;
    core/*) echo core-unsorted ;;
    lua/*) echo lua ;;
    backends/backend.h | backends/backend.c) echo contract ;;
    backends/*/*) local rest=${1#backends/} && echo "${rest%%/*}" ;;
    kernels/*) echo kernels ;;
    *) echo "" ;;
    esac
}

# The rooms each room may include, its own always among them.
allowed_for() {
    case $1 in
    base) echo "base" ;;
    io) echo "base io" ;;
    nn) echo "base io nn contract" ;;
    rl) echo "base io nn rl contract" ;;
    eval) echo "base io eval" ;;
    cli) echo "base io nn rl eval cli contract lua" ;;
    lua) echo "base io nn rl eval lua contract" ;;
    contract) echo "base contract" ;;
    cpu) echo "base contract cpu" ;;
    gpu) echo "base contract gpu kernels" ;;
    cuda | hip | gpuemu) echo "base contract gpu kernels $1" ;;
    kernels) echo "kernels" ;;
    core-unsorted) echo "" ;;
    esac
}

# Headers outside the tree that only some rooms may include: Lua and libffi
# (the Lua layer, and the CLI through it), GPU vendors' (backends, kernels).
system_header_allowed() { # room header
    case $2 in
    lua.h | lauxlib.h | lualib.h | ffi.h) [[ $1 == lua || $1 == cli ]] ;;
    cuda*.h | cublas*.h | hip/* | rocblas* | nccl.h | mma.h | cub/* | hipcub/* | rocprim/* | level_zero/*)
        [[ $1 == gpu || $1 == cuda || $1 == hip || $1 == gpuemu || $1 == kernels ]] ;;
    *) true ;;
    esac
}

resolve() { # file header -> repo-relative path, or nothing
    local dir candidate
    dir=$(dirname "$1")
    for candidate in "$dir/$2" "core/$2" "$2"; do
        if [[ -f $candidate ]]; then
            realpath --relative-to="$root" "$candidate"
            return
        fi
    done
}

# The tracked and new files of a checkout; every file of an unpacked tree.
list_sources() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files --cached --others --exclude-standard -- core lua backends kernels
    else
        find core lua backends kernels -type f
    fi
}

violations=0 checked=0
report() {
    echo "$1: $2"
    violations=$((violations + 1))
}

while IFS= read -r file; do
    room=$(room_of "$file")
    [[ -z $room ]] && continue
    if [[ $room == core-unsorted ]]; then
        report "$file:1" "a file directly in core/: put it in the room of its concern (base, io, nn, rl, eval, cli)"
        continue
    fi
    allowed=" $(allowed_for "$room") "
    while IFS=: read -r line text; do
        checked=$((checked + 1))
        if [[ $text =~ \#[[:space:]]*include[[:space:]]*\<([^>]+)\> ]]; then
            header=${BASH_REMATCH[1]}
            system_header_allowed "$room" "$header" ||
                report "$file:$line" "includes <$header>, which the $room room may not (docs/design.md, include rules)"
            continue
        fi
        [[ $text =~ \#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]] || continue
        header=${BASH_REMATCH[1]}
        target=$(resolve "$file" "$header")
        [[ -z $target ]] && continue
        target_room=$(room_of "$target")
        [[ -z $target_room || $allowed == *" $target_room "* ]] ||
            report "$file:$line" "includes \"$header\" ($target, room $target_room): $room may include only$allowed(docs/design.md, include rules)"
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include' "$file" || true)
done < <(list_sources | grep -E '\.(c|h|cpp|cu|cuh)$')

if ((checked == 0)); then
    echo "check-includes: no #include line found under $root: nothing was checked"
    exit 1
fi
if ((violations > 0)); then
    echo "check-includes: $violations include rule(s) broken"
    exit 1
fi
echo "check-includes: $checked include lines follow the rules"
