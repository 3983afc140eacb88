#!/usr/bin/env bash
# Installs the real recordings the audio rows of `make bench` measure
# (internal/codecbench/audio_real.go): speech from alsa-utils, sound effects
# from the freedesktop, GNOME and Deepin sound themes, music from Drascula's
# soundtrack — Debian packages, nothing downloaded from elsewhere. Without
# them the bench leaves those rows out.
set -euo pipefail
[ -f /usr/share/sounds/alsa/Front_Center.wav ] && [ -d /usr/share/scummvm/drascula/audio ] && \
  [ -d /usr/share/sounds/freedesktop ] && [ -d /usr/share/sounds/deepin ] && [ -f /usr/share/sounds/startup3.wav ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-audio-corpus: not root on a Debian-like system; the audio rows of the bench will be left out" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends alsa-utils sound-theme-freedesktop gnome-audio deepin-sound-theme drascula-music >/dev/null || \
  echo "install-audio-corpus: could not install the recordings" >&2
