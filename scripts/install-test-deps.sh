#!/usr/bin/env bash
# Installs the external tools the tests check our output with — ffprobe and
# ffmpeg (with libx264) from ffmpeg, mkvinfo from mkvtoolnix, a real speech
# recording (sound-theme-freedesktop) for the audio decoders, Node.js and the
# apache-arrow, @duckdb/node-api and @mcap/core npm packages — when they are missing. Tests that need a tool
# fail under CI=true when it is missing and are skipped (saying so) elsewhere.
set -euo pipefail
bash "$(dirname "$0")/install-debs.sh" install-test-deps ffprobe=ffmpeg ffmpeg=ffmpeg mkvinfo=mkvtoolnix node=nodejs npm=npm \
  /usr/share/sounds/freedesktop/stereo/audio-channel-front-left.oga=sound-theme-freedesktop

# apache-arrow from npm: an Arrow implementation we did not write reads our
# query results (internal/service/server/arrowjs_test.go). Pinned by package-lock.json.
js="$(dirname "$0")/../internal/service/server/testdata/arrowjs"
if command -v npm >/dev/null 2>&1 && [ ! -d "$js/node_modules/apache-arrow" ]; then
  (cd "$js" && npm ci --no-audit --no-fund --silent) || echo "install-test-deps: npm ci failed; the apache-arrow test will be skipped (or fail under CI)" >&2
fi

# apache-arrow and DuckDB from npm open the files `sensorium query -o` writes
# (cmd/sensorium/export_test.go). Pinned by package-lock.json.
readers="$(dirname "$0")/../cmd/sensorium/testdata/readers"
if command -v npm >/dev/null 2>&1 && { [ ! -d "$readers/node_modules/apache-arrow" ] || [ ! -d "$readers/node_modules/@duckdb/node-api" ]; }; then
  (cd "$readers" && npm ci --no-audit --no-fund --silent) || echo "install-test-deps: npm ci failed; the export readers test will be skipped (or fail under CI)" >&2
fi

# @mcap/core (Foxglove's MCAP library) writes the files `sensorium import`
# reads and reads back, indexed and CRC-checked, what `sensorium export`
# writes; @foxglove/rosmsg2-serialization encodes and decodes the ROS 2
# messages, @foxglove/wasm-zstd and wasm-lz4 the chunks
# (cmd/sensorium/import_mcap_test.go). Pinned by package-lock.json.
mcapjs="$(dirname "$0")/../cmd/sensorium/testdata/mcap"
if command -v npm >/dev/null 2>&1 && [ ! -d "$mcapjs/node_modules/@mcap/core" ]; then
  (cd "$mcapjs" && npm ci --no-audit --no-fund --silent) || echo "install-test-deps: npm ci failed; the MCAP test will be skipped (or fail under CI)" >&2
fi

# apache-arrow and DuckDB from npm write the files `sensorium import` reads
# (cmd/sensorium/import_table_test.go). Pinned by package-lock.json.
tablejs="$(dirname "$0")/../cmd/sensorium/testdata/table"
if command -v npm >/dev/null 2>&1 && { [ ! -d "$tablejs/node_modules/apache-arrow" ] || [ ! -d "$tablejs/node_modules/@duckdb/node-api" ]; }; then
  (cd "$tablejs" && npm ci --no-audit --no-fund --silent) || echo "install-test-deps: npm ci failed; the import writers test will be skipped (or fail under CI)" >&2
fi
