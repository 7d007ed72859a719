"""Real calls into the real hotline (Kamailio + workers + hub) from real SIP peers on loopback."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.settings import BUNDLED_PROMPTS
from tests.hotline_proc import Hotline
from tests.sipsupport import requires_kamailio

pytestmark = [pytest.mark.sip, requires_kamailio]


def voiced_span(peaks: list[int], threshold: int = 600) -> tuple[int, int]:
    """First and last index of frames louder than ``threshold``."""
    loud = [i for i, p in enumerate(peaks) if p > threshold]
    return (loud[0], loud[-1]) if loud else (-1, -1)


def wav_frame_peaks(path: Path, rate_out: int = 8000) -> list[int]:
    from ivr.audio import read_wav

    pcm = np.frombuffer(read_wav(path, rate_out), dtype="<i2")
    n = len(pcm) // (rate_out // 50)
    return [int(np.abs(f).max()) for f in pcm[: n * (rate_out // 50)].reshape(n, -1)]


@pytest.fixture(scope="module")
def hotline(tmp_path_factory):
    h = Hotline(tmp_path_factory.mktemp("hotline"), workers=2).start()
    yield h
    code = h.stop()
    assert code == 0, h.proc.log()[-3000:]


def test_welcome_is_heard_and_the_menu_walked_by_keypad(hotline, tmp_path):
    rec = tmp_path / "call.wav"
    out = hotline.dial("--record", str(rec), "--dtmf", "wait:2,1,wait:2,2,wait:1,123456#", "--duration", "14")
    assert out["connected"] and out["record_peak"] > 3000, out
    with wave.open(str(rec)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(14, abs=0.3)
    calls = hotline.wait_calls(lambda c: c and c[0]["status"] == "ended")
    call = calls[0]
    assert call["menu_path"][:4] == ["welcome", "main", "case_query", "id_number"], call
    assert call["digits"] == "12123456#"
    assert call["end_cause"] == "caller_hangup" and call["end_side"] == "caller"
    assert call["prompts"][0] == "welcome"
    assert call["worker"] in ("w0", "w1") and call["answered_at"]
