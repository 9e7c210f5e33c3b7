#!/usr/bin/env bash
# Set up everything the project needs, idempotently: running it again is quick and harmless.
#  - espeak-ng (Debian package) speaks the embedded demo corpus;
#  - chromium (Debian package) runs the browser test of the demo page, which is skipped
#    when chromium cannot be installed (no root and no passwordless sudo); SETUP_BROWSER=0
#    (what `make repro` sets) leaves it out;
#  - .venv/ at the repo root holds the project (pip install -e '.[dev]', torch pinned to 2.13.0),
#    with every other library at the version in constraints.txt: the versions that wrote the
#    committed dvc.lock (a newer pandas alone changes the bytes of every parquet file).
# The install is redone only when pyproject.toml or constraints.txt changes (a stamp in .venv
# records their hash).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# System packages, installed with apt-get as root or with passwordless sudo. espeak-ng is
# required; chromium is needed only by the browser test (tests/serving/test_browser.py), which is
# skipped when it is missing, so failing to install it is a note, not an error.
have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
APT_GET=""
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    APT_GET="env DEBIAN_FRONTEND=noninteractive apt-get"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    APT_GET="sudo DEBIAN_FRONTEND=noninteractive apt-get"
  fi
fi
need_espeak=""
need_chromium=""
command -v espeak-ng >/dev/null 2>&1 || need_espeak=1
# SETUP_BROWSER=0 (make repro): the pipeline needs no browser, only the browser test does.
if [ "${SETUP_BROWSER:-1}" != 0 ]; then have_chromium || need_chromium=1; fi

if [ -n "$APT_GET" ] && [ -n "$need_espeak$need_chromium" ]; then
  say "updating the apt package lists"
  $APT_GET update -qq || say "apt-get update failed; trying the install anyway"
fi

if [ -n "$need_espeak" ]; then
  if [ -n "$APT_GET" ]; then
    say "installing espeak-ng (Debian package)"
    $APT_GET install -y -qq espeak-ng >/dev/null
  else
    say "espeak-ng is missing and cannot be installed without root. Install it, then run again:"
    say "  Debian/Ubuntu: sudo apt-get install espeak-ng    macOS: brew install espeak-ng"
    exit 1
  fi
fi

if [ -n "$need_chromium" ]; then
  if [ -n "$APT_GET" ]; then
    say "installing chromium for the browser test (Debian package)"
    $APT_GET install -y -qq chromium fonts-dejavu-core >/dev/null || true
  fi
  if ! have_chromium; then
    say "note: chromium is not installed, so the browser test (tests/serving/test_browser.py) is skipped."
    say "  To run it: sudo apt-get install chromium (Debian), or put a chromium on PATH."
  fi
fi

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
      PYTHON=$candidate
      break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  say "Python 3.11 or 3.12 is required (set PYTHON=/path/to/python3.11)"
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.swedish-transcriber-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing the project into .venv (torch==2.13.0, transformers, dvc, ...)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
  echo "$want" >"$stamp"
else
  say ".venv is up to date"
fi
