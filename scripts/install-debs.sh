#!/usr/bin/env bash
# install-debs.sh WHO COMMAND=PACKAGE …: installs from Debian's packages the
# packages whose command (or, for /a/path=PACKAGE, file) is missing, when this
# is root (or has password-less sudo) on a Debian-like system; otherwise it says what is missing and exits 0,
# and the callers' tests or benchmarks that need it skip (or fail under CI).
set -euo pipefail
who=$1
shift
missing=()
for pair in "$@"; do
  what=${pair%%=*}
  if [[ $what == /* ]]; then # a file the package installs
    [ -e "$what" ] || missing+=("${pair#*=}")
  else
    command -v "$what" >/dev/null 2>&1 || missing+=("${pair#*=}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "$who: ${missing[*]} missing and no root to install them" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$who: ${missing[*]} missing and this is not a Debian-like system; install them by hand" >&2
  exit 0
fi
echo "$who: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || \
  echo "$who: could not install ${missing[*]}" >&2
