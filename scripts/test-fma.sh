#!/usr/bin/env bash
# The wire formats must decode to the same bits on every machine. Go may fuse
# a multiply and an add into one FMA instruction where the CPU has one (arm64,
# amd64 built for v3), which rounds once instead of twice; a codec that let
# that happen would write frames another machine reads back a ulp off. The
# golden frames and the numeric round trips are run again built for amd64 v3,
# so that such a codec fails here rather than on a user's ARM gateway.
set -euo pipefail
GO=${GO:-go}
if [ "$($GO env GOARCH)" != amd64 ]; then
  echo "test-fma: not amd64; the plain test run already has FMA"
  exit 0
fi
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) "
for f in avx2 fma bmi1 bmi2 movbe f16c lzcnt; do
  [ "$f" = lzcnt ] && f=abm # /proc/cpuinfo names LZCNT abm
  case "$flags" in
    *" $f "*) ;;
    *) echo "test-fma: this CPU lacks $f, so amd64 v3 code cannot run here; skipped"; exit 0 ;;
  esac
done
GOAMD64=v3 $GO test -count=1 -run 'Golden|Numeric|Affine|ScalarEncoder|Codec' ./codecs ./signals
