#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: lint, unit, and integration tests with real
# SIP peers (Kamailio, sipp, baresip, pjsua2) on loopback. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/python scripts/render_prompts.py --check
# two workers (2 cores): a module stays on one worker, decode-heavy modules run one at a time (tests/conftest.py)
exec .venv/bin/python -m pytest -p no:cacheprovider -n 2 --dist loadfile "$@"
