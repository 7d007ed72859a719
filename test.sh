#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: lint, unit, and integration tests with real
# SIP peers (Kamailio, sipp, baresip, pjsua2) on loopback. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/python scripts/render_prompts.py --check
# one process: under `-n 2 --dist loadfile` (tests/conftest.py groups the decode-heavy modules) the suite takes
# 19-22 min instead of ~34, but two real-time speech tests still failed from CPU contention (README)
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
