#!/usr/bin/env bash
# Installs the external tools the tests check our output with — ffprobe and
# ffmpeg (with libx264) from ffmpeg, mkvinfo from mkvtoolnix — when they are
# missing. Tests that need a tool fail under CI=true when it is missing and
# are skipped (saying so) elsewhere.
set -euo pipefail
exec bash "$(dirname "$0")/install-debs.sh" install-test-deps ffprobe=ffmpeg ffmpeg=ffmpeg mkvinfo=mkvtoolnix
