#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60s each). New findings land in
# the package's testdata/fuzz/<Target>/ and become regression cases: commit them.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    echo "== $pkg $t ($fuzztime)"
    if ! go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime"; then
      status=1
    fi
  done
done
exit $status
