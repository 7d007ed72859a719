"""baresip as a real third-party SIP phone, driven over its ctrl_tcp netstring JSON interface."""

from __future__ import annotations

import json
import shutil
import socket
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.sipsupport import Proc, free_udp_port

requires_baresip = pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed")
MODULES = Path("/usr/lib/baresip/modules")


def _tone_wav(path: Path, seconds: float = 30.0, rate: int = 8000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


class Baresip:
    def __init__(self, home: Path, audio: Path | None = None):
        self.home = home
        self.ctrl_port = free_udp_port()
        self.sip_port = free_udp_port()
        home.mkdir(parents=True, exist_ok=True)
        if audio is None:  # baresip 1.0's ausine wants 48 kHz; a phone-rate tone file works everywhere
            audio = home / "tone.wav"
            _tone_wav(audio)
        source = f"aufile,{audio}"
        (home / "config").write_text("\n".join([
            f"module_path {MODULES}",
            "module g711.so", "module aufile.so", "module ctrl_tcp.so",
            "module_app account.so", "module_app menu.so",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            "net_interface 127.0.0.1",
            f"audio_source {source}",
            f"audio_player aufile,{home / 'heard.wav'}",
            "audio_alert aufile,/dev/null",
            "rtp_ports 45000-45100",
            "",
        ]))
        (home / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0\n")
        (home / "contacts").write_text("")
        self.proc = Proc("baresip", ["baresip", "-f", str(home)], home / "baresip.log", home)
        self._sock: socket.socket | None = None

    def start(self, timeout: float = 10.0) -> Baresip:
        self.proc.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                self._sock.settimeout(5)
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"baresip did not open ctrl_tcp:\n{self.proc.log()[-2000:]}")

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def stop(self) -> None:
        if self._sock:
            self._sock.close()
        self.proc.stop()
