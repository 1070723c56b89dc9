#!/usr/bin/env bash
# The documentation holds together:
#   - every path into the docs folder (a Markdown file there) or to
#     tests/README.md that a file of the repository cites exists;
#   - every relative Markdown link in README.md, the docs and tests/README.md
#     points at an existing file or folder (code blocks are not prose, and
#     are skipped);
#   - README.md stays within 200 lines, and the five docs exist.
# Paths into the shared folder beside the repository (../shared/...) are not
# the repository's and are left alone. Checking nothing at all is a failure:
# a broken file list must not pass as "no dangling reference".
# Prints FILE:LINE: what is wrong, for each problem, then one summary line.
# Usage: tests/docs_test.sh [REPO_ROOT]
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$root"

readme_max_lines=200
required_docs=(docs/recipes.md docs/gpu.md docs/method.md docs/design.md tests/README.md)
link_sources=(README.md docs/*.md tests/README.md)

problems=0 references=0 links=0
problem() {
    echo "$1: $2"
    problems=$((problems + 1))
}

# The files of a checkout, tracked or new (those it deletes left out); every
# file of an unpacked tree, build and run folders aside.
list_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files --cached --others --exclude-standard
    else
        find . -type f -not -path './.git/*' -not -path './build*' -not -path './runs/*' -not -path './peers/*' |
            sed 's|^\./||'
    fi
}

# A cited path, with whatever path characters run into it, as FILE:LINE:TOKEN.
# The regex is split so that this file does not cite a doc itself.
docs_dir=docs
cited_path="[A-Za-z0-9_./-]*(${docs_dir}/[A-Za-z0-9_.-]+\\.md|tests/README\\.md)"

check_references() {
    local file line token path
    while IFS= read -r file; do
        [[ -f $file ]] || continue
        while IFS=: read -r line token; do
            [[ $token == *shared/* ]] && continue
            [[ $token =~ (${docs_dir}/[A-Za-z0-9_.-]+\.md|tests/README\.md)$ ]] || continue
            path=${BASH_REMATCH[1]}
            references=$((references + 1))
            [[ -f $path ]] || problem "$file:$line" "cites $path, which does not exist"
        done < <(grep -nIoE "$cited_path" "$file" | sort -u -t: -k1,1n -k2 || true)
    done < <(list_files)
}

# Relative link targets of a Markdown file outside fenced code blocks, as
# LINE<TAB>TARGET (the #fragment dropped).
markdown_links() {
    awk '
        /^[[:space:]]*```/ { fenced = !fenced; next }
        fenced { next }
        {
            rest = $0
            while (match(rest, /\]\([^) ]+\)/)) {
                target = substr(rest, RSTART + 2, RLENGTH - 3)
                rest = substr(rest, RSTART + RLENGTH)
                sub(/#.*/, "", target)
                if (target == "" || target ~ /^[a-z]+:/) continue
                print NR "\t" target
            }
        }' "$1"
}

check_links() {
    local file line target dir
    for file in "${link_sources[@]}"; do
        [[ -f $file ]] || continue
        dir=$(dirname "$file")
        while IFS=$'\t' read -r line target; do
            links=$((links + 1))
            [[ -e $dir/$target ]] || problem "$file:$line" "links to $target, which does not exist"
        done < <(markdown_links "$file")
    done
}

readme_lines() { if [[ -f README.md ]]; then wc -l <README.md; else echo 0; fi; }

check_shape() {
    local doc lines
    for doc in README.md "${required_docs[@]}"; do
        [[ -f $doc ]] || problem "$doc:1" "missing: the documentation is README.md plus ${required_docs[*]}"
    done
    lines=$(readme_lines)
    ((lines <= readme_max_lines)) ||
        problem "README.md:$lines" "README.md has $lines lines, more than $readme_max_lines: move detail into docs/"
}

check_shape
check_references
check_links

if ((references + links == 0)); then
    echo "docs_test: no doc reference or link found under $root: nothing was checked"
    exit 1
fi
echo "docs_test: $references doc references and $links links checked, README.md $(readme_lines) lines," \
    "$problems problem(s)"
((problems == 0))
