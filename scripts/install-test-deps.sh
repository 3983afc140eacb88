#!/usr/bin/env bash
# Installs the external tools the tests check our output with (ffprobe from
# ffmpeg, mkvinfo from mkvtoolnix), from Debian's packages, when they are
# missing. Tests that need a tool fail under CI=true when it is missing and are
# skipped (saying so) elsewhere.
set -euo pipefail

missing=()
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v mkvinfo >/dev/null 2>&1 || missing+=(mkvtoolnix)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install-test-deps: ${missing[*]} missing and no root to install them; the tests that need them will be skipped" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: ${missing[*]} missing and this is not a Debian-like system; install them by hand" >&2
  exit 0
fi
echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
