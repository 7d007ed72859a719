#!/usr/bin/env bash
# Set up (first time) and run the hotline: Kamailio on SIP port 5060, the IVR workers, the console hub.
# Extra arguments go to `hotline serve`, e.g. ./run.sh --single --sip-port 5080
# Started as root, the hotline runs as the system user `hotline` (HOTLINE_RUN_AS; set it empty to stay root).
# The console hub serves HTTPS (a self-signed certificate made at first start, its fingerprint printed;
# HOTLINE_HUB__TLS=false for plain HTTP, hub.tls_cert/tls_key for the court's own certificate).
# Kamailio also takes SIP over TLS on 5061 (its own self-signed certificate, fingerprint printed) and the calls
# accept SRTP (HOTLINE_SIP__TLS=false / HOTLINE_SIP__SRTP=off turn them off; sip.srtp=mandatory refuses plain RTP).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
export HOTLINE_HUB__TLS="${HOTLINE_HUB__TLS-true}"
export HOTLINE_SIP__TLS="${HOTLINE_SIP__TLS-true}"
export HOTLINE_SIP__SRTP="${HOTLINE_SIP__SRTP-optional}"
if [ "$(id -u)" = 0 ]; then
  export HOTLINE_RUN_AS="${HOTLINE_RUN_AS-hotline}"
  if [ -n "$HOTLINE_RUN_AS" ] && ! id -u "$HOTLINE_RUN_AS" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$HOTLINE_RUN_AS"
  fi
  # Python and the checkout must be readable by that user (not the case under /root, e.g. a pyenv Python):
  # then say so and stay root rather than not start at all.
  if [ -n "$HOTLINE_RUN_AS" ] && ! runuser -u "$HOTLINE_RUN_AS" -- .venv/bin/python -c 'import hotline' 2>/dev/null; then
    echo "run.sh: user $HOTLINE_RUN_AS cannot run $(readlink -f .venv/bin/python) with this checkout;" \
         "running as root (move Python and the checkout out of /root to run unprivileged)" >&2
    HOTLINE_RUN_AS=""
  fi
  [ -n "$HOTLINE_RUN_AS" ] || unset HOTLINE_RUN_AS
fi
exec .venv/bin/hotline serve "$@"
