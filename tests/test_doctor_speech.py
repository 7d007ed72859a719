"""`hotline doctor` tells the truth about speech (issue 14, part 6): a missing or corrupt whisper model, a
TTS venv that does not start and a speech service that is not running are red, with the fixing command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from tests.sipsupport import free_udp_port as free_port  # TCP and UDP, outside the ephemeral range

ROOT = Path(__file__).resolve().parent.parent


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def doctor(home: Path, **env: str) -> tuple[int, dict[str, dict]]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    e.update({"HOTLINE_HOME": str(home), "PYTHONPATH": str(ROOT), **env})
    r = subprocess.run([sys.executable, "-m", "hotline", "doctor", "--json"], capture_output=True, text=True,
                       env=e, cwd=home, timeout=120)
    return r.returncode, {c["name"]: c for c in map(json.loads, r.stdout.splitlines())}


def test_missing_model_broken_voice_and_absent_service_are_red_with_the_fix(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    broken = tmp_path / "venv"
    (broken / "bin").mkdir(parents=True)
    (broken / "bin" / "python").symlink_to("/nonexistent/python3")  # a venv whose interpreter is gone
    # the hotline "runs" (a hub answering /healthz) but no speech service listens
    hub = HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        code, checks = doctor(home, HOTLINE_TTS__VENV=str(broken), HOTLINE_SPEECH__PORT=str(free_port()),
                              HOTLINE_HUB__PORT=str(hub.server_address[1]))
    finally:
        hub.shutdown()
    model, voice, service = checks["speech models"], checks["tts venv"], checks["speech service"]
    assert checks["hub"]["status"] == "ok" and code == 1
    assert model["status"] == "fail" and "whisper" in model["detail"] and "hotline models install" in model["fix"]
    assert voice["status"] == "fail" and voice["fix"] == f"scripts/setup_tts_venv.sh {broken}"
    assert service["status"] == "fail" and "hotline serve" in service["fix"]


def test_corrupt_model_is_red_and_an_installed_one_green(tmp_path):
    home = tmp_path / "home"
    models = home / "models"
    models.mkdir(parents=True)
    src = ROOT / "var" / "models" / "whisper-base"
    (models / "whisper-base").mkdir()
    for f in src.iterdir():
        (models / "whisper-base" / f.name).symlink_to(f.resolve())
    venv = ROOT / "var" / "tts-venv"
    _, checks = doctor(home, HOTLINE_TTS__VENV=str(venv.resolve()))
    assert checks["speech models"]["status"] == "ok", checks["speech models"]
    assert checks["tts venv"]["status"] == "ok", checks["tts venv"]
    assert checks["digit reader"]["status"] == "ok" and "digit_reader.npz" in checks["digit reader"]["detail"]
    # same size, other bytes: only the checksum tells
    (models / "whisper-base" / "vocabulary.txt").unlink()
    data = bytearray((src / "vocabulary.txt").read_bytes())
    data[100] ^= 1
    (models / "whisper-base" / "vocabulary.txt").write_bytes(bytes(data))
    _, checks = doctor(home, HOTLINE_TTS__VENV=str(venv.resolve()))
    assert checks["speech models"]["status"] == "fail" and "corrupt" in checks["speech models"]["detail"]


def test_speech_disabled_is_information_not_an_error(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    _, checks = doctor(home, HOTLINE_SPEECH__ENABLED="false")
    assert checks["speech"]["status"] == "info" and "speech models" not in checks
