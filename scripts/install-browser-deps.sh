#!/usr/bin/env bash
# Installs Debian's chromium, which the console's browser tests
# (compat/browser_test.go) drive headless through chromedp, when it is
# missing. Those tests skip (saying so) without it, and fail under CI=true.
set -euo pipefail
bash "$(dirname "$0")/install-debs.sh" install-browser-deps chromium=chromium
