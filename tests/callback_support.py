"""A citizen's phone for the callback (回访) tests: tests/sip_answerer.py with a mode per called number (answer and
press a rating key, busy, ring without answering)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.sipsupport import Proc, free_udp_port

ROOT = Path(__file__).resolve().parent.parent


class CitizenPhone(Proc):
    """``users`` maps the called number to a mode of sip_answerer (``dtmf:2``, ``busy``, ``ring`` …)."""

    def __init__(self, home: Path, users: dict[str, str], rtp: int, dtmf_after: float = 1.0,
                 dtmf_every: float = 1.5):
        self.port = free_udp_port()
        argv = [sys.executable, str(ROOT / "tests" / "sip_answerer.py"), "--port", str(self.port), "--modes", "busy",
                "--rtp-port", str(rtp), "--record-prefix", str(home / f"citizen-{self.port}"),
                "--dtmf-after", str(dtmf_after), "--dtmf-every", str(dtmf_every)]
        for number, mode in users.items():
            argv += ["--user", f"{number}={mode}"]
        super().__init__("citizen", argv, home / f"citizen-{self.port}.log", ROOT)
        self.start()
        deadline = time.monotonic() + 10
        while '"ready"' not in self.log():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"citizen phone not up:\n{self.log()[-2000:]}")
            time.sleep(0.1)

    @property
    def template(self) -> str:
        return f"sip:{{number}}@127.0.0.1:{self.port}"

    def uri(self, number: str) -> str:
        return f"sip:{number}@127.0.0.1:{self.port}"

    def lines(self) -> list[dict]:
        return [json.loads(x) for x in self.log().splitlines() if x.startswith("{")]

    def incoming(self, number: str) -> list[dict]:
        return [x for x in self.lines() if "incoming" in x and x["user"] == number]

    def results(self) -> list[dict]:
        return [x for x in self.lines() if "connected" in x]

    def wait_result(self, n: int, timeout: float = 40.0) -> dict:
        """The end of the ``n``-th incoming call (1-based)."""
        deadline = time.monotonic() + timeout
        while True:
            for r in self.results():
                if r["n"] == n:
                    return r
            if time.monotonic() > deadline:
                raise AssertionError(f"call {n} to the citizen never ended:\n{self.log()[-2000:]}")
            time.sleep(0.1)
