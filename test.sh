#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: lint, unit, and integration tests with real
# SIP peers (Kamailio, sipp, baresip, pjsua2) on loopback. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/python scripts/render_prompts.py --check
# two processes (~20 min instead of ~34 in one): tests/conftest.py runs the modules that decode speech one after
# another on the first, the rest on the second at a lower priority, so a real-time call keeps its core (README)
exec .venv/bin/python -m pytest -p no:cacheprovider -n 2 --dist loadfile "$@"
