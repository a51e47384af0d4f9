#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time (FUZZTIME, default
# 5s). Targets are discovered, so new Fuzz functions are picked up without
# editing this file. Usage: build/fuzz.sh [package pattern, default ./core/...]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZTIME=${FUZZTIME:-5s}
pattern=${1:-./core/...}

# Only packages with test files can hold fuzz targets. A failing `go list`
# (e.g. a compile error) fails the script.
pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "$pattern")

count=0
while IFS= read -r pkg; do
	[[ -n "$pkg" ]] || continue
	# `go test -list` prints matching names, then "ok <pkg> ..."; keep names.
	targets=$(go test -list '^Fuzz' "$pkg" | grep -E '^Fuzz' || true)
	for target in $targets; do
		echo "== fuzz $pkg $target ($FUZZTIME)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
		count=$((count + 1))
	done
done <<<"$pkgs"

echo "fuzz.sh: ran $count fuzz target(s)"
