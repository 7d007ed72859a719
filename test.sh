#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: lint, unit, and integration tests with real
# SIP peers (Kamailio, sipp, baresip, pjsua2) on loopback. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/python scripts/render_prompts.py --check
# one process: on two xdist workers (`./test.sh -n 2 --dist loadfile`, ~23 min instead of ~34) five real-time tests
# still failed from CPU contention in a fresh clone, even with the second worker at a lower priority (README)
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
