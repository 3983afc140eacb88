#!/usr/bin/env bash
# Installs the peers `make bench` measures our codecs against — Google Draco
# (draco_encoder) for LIDAR and ffmpeg's FLAC for audio — from Debian's
# packages when they are missing. Without them the bench still runs and
# leaves their columns out.
set -euo pipefail

missing=()
command -v draco_encoder >/dev/null 2>&1 || missing+=(draco)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install-bench-deps: ${missing[*]} missing and no root to install them; the bench leaves those peers out" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-bench-deps: ${missing[*]} missing and this is not a Debian-like system; the bench leaves those peers out" >&2
  exit 0
fi
echo "install-bench-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || \
  echo "install-bench-deps: could not install ${missing[*]}; the bench leaves those peers out" >&2
