#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60s each). New findings land in
# the package's testdata/fuzz/<Target>/ and become regression cases: commit them.
#
#   scripts/fuzz.sh [FUZZTIME]        e.g. 10m: make fuzz FUZZTIME=10m
#
# Environment:
#   FUZZJOBS=N       targets fuzzed at once (default 1)
#   FUZZWORKERS=N    workers per target, go test -parallel (default: all cores / FUZZJOBS)
#   FUZZONLY=REGEX   only targets whose "package Target" matches (e.g. 'awsauth|FuzzReader')
#   FUZZLOG=FILE     one summary line per target appended there (default fuzz-results.txt)
#
# A target's summary line gives its package, name, time, executions, the
# corpus entries it found new, and PASS or FAIL; the full output of a
# failing target is kept beside the log as FILE.<Target>.out.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
jobs=${FUZZJOBS:-1}
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
workers=${FUZZWORKERS:-$(( cores / jobs > 0 ? cores / jobs : 1 ))}
only=${FUZZONLY:-.}
log=${FUZZLOG:-fuzz-results.txt}

targets=()
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for t in $(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true); do
    if [[ "$pkg $t" =~ $only ]]; then
      targets+=("$pkg $t")
    fi
  done
done
echo "fuzz: ${#targets[@]} targets, $fuzztime each, $jobs at once with $workers workers each; summaries in $log"

# fuzz_one runs one target and appends its summary line.
fuzz_one() {
  local pkg=$1 t=$2 out
  out=$(mktemp)
  local begin=$SECONDS status=PASS
  echo "== $pkg $t ($fuzztime)"
  if ! go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" -parallel "$workers" >"$out" 2>&1; then
    status=FAIL
    cp "$out" "$log.$t.out"
    tail -30 "$out"
  fi
  # go test's last progress line: "fuzz: elapsed: 10m0s, execs: 1234 (2/sec), new interesting: 5 (total: 60)"
  local last
  last=$(grep -o 'execs: [0-9]* ([0-9]*/sec), new interesting: [0-9]* (total: [0-9]*)' "$out" | tail -1 || true)
  printf '%s\t%s\t%s\t%ss\t%s\t%s\n' "$(date -u +%FT%TZ)" "$pkg" "$t" "$(( SECONDS - begin ))" "${last:-no progress line}" "$status" >>"$log"
  rm -f "$out"
  [ "$status" = PASS ]
}

status=0
running=0
for entry in "${targets[@]}"; do
  # shellcheck disable=SC2086
  fuzz_one $entry &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
