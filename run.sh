#!/usr/bin/env bash
# Set up (first time) and run the hotline: Kamailio on SIP port 5060, the IVR workers, the console hub.
# Extra arguments go to `hotline serve`, e.g. ./run.sh --single --sip-port 5080
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/hotline serve "$@"
