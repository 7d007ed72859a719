"""Issue 15, item 6: a caller that sends no RTP is hung up after ``ivr.rtp_timeout_s`` (cause rtp_timeout).

`hotline serve --single` with a 3 s RTP timeout. A sipp caller that answers the SDP but never sends a packet is
hung up by the IVR about 3 s after its media starts (instead of holding a call slot until max_call_duration_s);
a `hotline dial` caller, which sends RTP all along, stays 8 s until it hangs up itself."""

from __future__ import annotations

import subprocess
from datetime import datetime

import pytest

from tests.hotline_proc import Hotline
from tests.sipsupport import SIPP_DIR, free_udp_port, requires_sipp, sipp_argv

pytestmark = [pytest.mark.sip, requires_sipp, pytest.mark.timeout(120)]


def test_a_caller_without_rtp_is_hung_up_and_one_with_rtp_is_not(tmp_path):
    h = Hotline(tmp_path / "home", single=True, extra_env={"HOTLINE_IVR__RTP_TIMEOUT_S": "3"}).start()
    try:
        subprocess.run(sipp_argv([
            "-sf", str(SIPP_DIR / "uac_call.xml"), "-s", "12368", f"127.0.0.1:{h.sip_port}",
            "-i", "127.0.0.1", "-bind_local", "-p", str(free_udp_port()), "-mp", str(free_udp_port(tcp=False)),
            "-m", "1", "-l", "1", "-d", "20000", "-recv_timeout", "30000", "-default_behaviors", "all,-bye"], 40),
            cwd=tmp_path, capture_output=True, timeout=60)
        silent = h.wait_calls(lambda c: len(c) == 1 and c[0]["status"] == "ended", timeout=15)[0]
        caller = h.dial("--duration", "8")
        calls = h.wait_calls(lambda c: len(c) == 2 and all(x["status"] == "ended" for x in c), timeout=20)
    finally:
        assert h.stop() == 0
    assert silent["end_cause"] == "rtp_timeout" and silent["end_side"] == "ivr", silent
    held = (datetime.fromisoformat(silent["ended_at"]) - datetime.fromisoformat(silent["answered_at"])).total_seconds()
    assert 2.5 < held < 7.0, held  # 3 s without a packet, sampled each second
    talking = next(c for c in calls if c["call_id"] != silent["call_id"])
    assert caller["connected"] and talking["end_cause"] == "caller_hangup", talking
    print(f"\nsilent caller held {held:.1f} s; the talking caller ended by itself after {caller['duration_s']} s")
