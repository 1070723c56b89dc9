#!/usr/bin/env bash
# Runs one test recipe with `egrc run` in a fresh run folder (removed after).
# Usage: run_recipe.sh EGRC RECIPE [egrc run flags...]; exits with egrc's code.
set -u
egrc=$1
recipe=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$egrc" run "$recipe" --out "$out/run" --quiet "$@"
