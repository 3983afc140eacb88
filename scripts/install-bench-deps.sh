#!/usr/bin/env bash
# Installs the peers `make bench` measures our codecs against — Google Draco
# (draco_encoder) for LIDAR and ffmpeg's FLAC for audio — when they are
# missing. Without them the bench still runs and leaves their columns out.
set -euo pipefail
bash "$(dirname "$0")/install-debs.sh" install-bench-deps draco_encoder=draco ffmpeg=ffmpeg
exec bash "$(dirname "$0")/install-audio-corpus.sh"
