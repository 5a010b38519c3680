#!/usr/bin/env bash
# Create a virtualenv at $2 with interpreter $1; on Debian/Ubuntu without python3-venv, install it (root only).
set -euo pipefail
py=${1:-python3}; venv=${2:-.venv}
[ -x "$venv/bin/python" ] && exit 0
if ! "$py" -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt-get update -qq && (apt-get install -y -qq "python${ver}-venv" || apt-get install -y -qq python3-venv)
    "$py" -m venv "$venv"
  else
    echo "error: '$py -m venv' failed; install your distribution's python3-venv package" >&2; exit 1
  fi
fi
"$venv/bin/python" -m pip install -q --upgrade pip
