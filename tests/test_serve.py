"""`hotline serve` as an operator meets it: single mode, graceful drain on SIGTERM, trunk registration."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest

from tests.hotline_proc import Hotline
from tests.sipsupport import SIPP_DIR, free_udp_port, requires_kamailio, requires_sipp, sipp_argv

pytestmark = [pytest.mark.sip]


def test_single_mode_answers_on_its_own_port(tmp_path):
    h = Hotline(tmp_path / "home", single=True).start()
    try:
        out = h.dial("--duration", "3")
        assert out["connected"] and out["record_peak"] > 3000, out
        call = h.wait_calls(lambda c: c and c[0]["status"] == "ended")[0]
        assert call["worker"] == "w0" and call["menu_path"][0] == "welcome"
    finally:
        assert h.stop() == 0


@requires_kamailio
def test_sigterm_drains_running_calls_and_refuses_new_ones(tmp_path):
    h = Hotline(tmp_path / "home", workers=1, extra_env={"HOTLINE_IVR__DRAIN_TIMEOUT_S": "15"}).start()
    running: dict = {}
    t = threading.Thread(target=lambda: running.update(h.dial("--duration", "8")))
    t.start()
    h.wait_calls(lambda c: c and c[0]["status"] == "answered")
    h.proc.popen.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    refused = h.dial("--duration", "2")
    t.join(30)
    code = h.proc.popen.wait(30)
    assert running["connected"] and running["hangup_side"] == "local" and running["duration_s"] >= 7.9, running
    assert not refused["connected"] and refused["status_code"] == 503, refused
    assert code == 0
    calls = {c["status"]: c for c in h.calls()}
    assert calls["ended"]["end_cause"] == "caller_hangup"  # the call in progress was not cut
    assert calls["rejected"]["status_code"] == 503 and calls["rejected"]["end_cause"] == "draining"


@requires_kamailio
@requires_sipp
def test_worker_registers_to_a_pbx_with_the_front_door_as_contact(tmp_path):
    pbx_port = free_udp_port()
    log = tmp_path / "registrar.log"
    pbx = subprocess.Popen(sipp_argv(["-sf", str(SIPP_DIR / "uas_registrar.xml"), "-i", "127.0.0.1",
                                      "-p", str(pbx_port), "-m", "1", "-trace_msg", "-message_file", str(log)], 40),
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    accounts = [{"name": "court-pbx", "id_uri": "sip:12368@127.0.0.1", "registrar": f"sip:127.0.0.1:{pbx_port}"}]
    h = Hotline(tmp_path / "home", workers=2, extra_env={"HOTLINE_SIP__ACCOUNTS": json.dumps(accounts)}).start()
    try:
        assert pbx.wait(30) == 0
        text = log.read_text(errors="replace")
        register = text[text.index("REGISTER sip:"):]
        assert f"<sip:12368@127.0.0.1:{h.sip_port}>" in register.split("\n\n")[0], register[:800]
        deadline = time.monotonic() + 5
        while "registration" not in h.proc.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "code=200" in h.proc.log()
    finally:
        pbx.kill()
        assert h.stop() == 0
