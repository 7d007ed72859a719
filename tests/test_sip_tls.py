"""Issue 15: SIP over TLS at the front door and SRTP on the calls, as settings (``sip.tls``, ``sip.srtp``).

A real `hotline serve` (Kamailio with its tls module, one worker) with ``sip.tls`` on and ``sip.srtp = optional``:
the self-signed certificate is made at first start under ``home/tls/`` and its fingerprint printed; the TLS port
presents exactly that certificate; a `hotline dial --tls --srtp` caller (pjsua2 over TLS, SRTP mandatory on its
side: the call fails unless the hotline agrees to SRTP) connects, hears the greeting and leaves a call record; a
plain UDP caller without SRTP still gets through (optional)."""

from __future__ import annotations

import hashlib
import re
import shutil
import ssl
from pathlib import Path

import pytest

from tests.hotline_proc import Hotline
from tests.sipsupport import free_udp_port

TLS_MODULE = any(Path(d, "tls.so").is_file() for d in (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules"))
pytestmark = [pytest.mark.sip, pytest.mark.timeout(150),
              pytest.mark.skipif(not (shutil.which("kamailio") and TLS_MODULE),
                                 reason="needs kamailio and kamailio-tls-modules")]


def test_a_tls_caller_with_srtp_and_a_plain_caller_both_get_through(tmp_path):
    tls_port = free_udp_port()
    h = Hotline(tmp_path / "home", workers=1, extra_env={
        "HOTLINE_SIP__TLS": "true", "HOTLINE_SIP__TLS_PORT": str(tls_port), "HOTLINE_SIP__SRTP": "optional",
        "HOTLINE_IVR__MAX_CALL_DURATION_S": "6"}).start(timeout=120)  # a loaded machine starts slowly
    try:
        crt = h.home / "tls" / "sip.crt"
        assert crt.is_file() and (h.home / "tls" / "sip.key").stat().st_mode & 0o077 == 0
        served = ssl.get_server_certificate(("127.0.0.1", tls_port), timeout=5)
        fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(served)).hexdigest().upper()
        printed = re.search(r"SIP TLS on port \d+, certificate \S+, SHA-256 fingerprint ([0-9A-F:]+)", h.proc.log())
        assert printed and printed.group(1).replace(":", "") == fp, h.proc.log()[-2000:]

        secure = h.dial("--tls", "--srtp", "--duration", "4", uri=f"sip:12368@127.0.0.1:{tls_port}")
        # the hotline hangs up (the IVR's 6 s cap): its BYE reaches the caller over TLS
        cut = h.dial("--tls", "--srtp", "--duration", "15", uri=f"sip:12368@127.0.0.1:{tls_port}")
        plain = h.dial("--duration", "3")
        calls = h.wait_calls(lambda c: len(c) == 3 and all(x["status"] == "ended" for x in c), timeout=20)
    finally:
        assert h.stop() == 0
    assert secure["connected"] and secure["srtp"], secure
    assert secure["record_peak"] > 1000, secure  # the greeting came through the SRTP stream, decrypted
    assert plain["connected"] and not plain["srtp"] and plain["record_peak"] > 1000, plain
    assert cut["connected"] and cut["srtp"] and cut["hangup_side"] == "remote" and cut["duration_s"] < 10, cut
    assert sorted(c["end_side"] for c in calls) == ["caller", "caller", "ivr"], calls
    print(f"\nTLS+SRTP caller: answered after {secure['answered_after_s']} s, heard {secure['record_s']} s "
          f"(peak {secure['record_peak']}); plain caller answered after {plain['answered_after_s']} s")
