#!/bin/sh
# Real tokenizer.json files of released models (kept in ../shared, not in
# this repository) give the ids Hugging Face tokenizers 0.23.3 gave for the
# texts in tests/data/tokenizer/real/NAME.tsv (the text's bytes as \\0NNN octal escapes, tab, ids).
# Usage: real_tokenizers_test.sh EGRC REPO_ROOT; EGRC_REAL_TOKENIZERS names
# the folder of NAME.json.gz files. Exits 77 (skipped) without it.
set -eu
egrc=$1
root=$2
dir=${EGRC_REAL_TOKENIZERS:-$root/../shared/fixtures/real-tokenizers}
if [ ! -d "$dir" ]; then
    echo "skipped: $dir is absent"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
for expected in "$root"/tests/data/tokenizer/real/*.tsv; do
    name=$(basename "$expected" .tsv)
    gzip -dc "$dir/$name.json.gz" > "$tmp/$name.json"
    bad=0
    while IFS="$(printf '\t')" read -r escaped ids; do
        text=$(printf '%b' "$escaped"; printf x)
        text=${text%x}
        got=$("$egrc" tokenize "$tmp/$name.json" "$text" | tr '\n' ' ' | sed 's/ *$//')
        if [ "$got" != "$ids" ]; then
            echo "FAIL $name: text $escaped: got '$got', want '$ids'"
            bad=1
        fi
    done < "$expected"
    [ $bad = 0 ] && echo "ok $name" || failed=1
done
exit $failed
