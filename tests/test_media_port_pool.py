"""Media ports are pooled: a worker never destroys one while pjmedia's clock runs (ivr/sip/media_port.py).

Destroying ports mid-run is what killed a worker with SIGSEGV in the 1-hour soak ("'CallMediaPort' object has no
attribute 'stats'" in onFrameReceived, then the crash): ``tests/media_port_churn.py destroy 3000`` reproduces it
(exit -11 in each of 2 runs on this machine), ``pool`` runs the same churn through the pool. The churn runs in its
own process: one pjsua2 library per process, and a crash must not take pytest with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

CHURN = Path(__file__).resolve().parent / "media_port_churn.py"


def test_a_thousand_calls_through_the_pool_reuse_one_port_while_the_bridge_clock_runs():
    run = subprocess.run([sys.executable, str(CHURN), "pool", "1000"], capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "frame_rx_failed" not in run.stderr and "frame_tx_failed" not in run.stderr, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["cycles"] == 1000
    assert got["created"] == 1  # one port, taken and given back 1000 times
    # the last call hears its 300 ms of tone (15 frames of 20 ms) through its own callback, and its port's counters
    # start from zero: a port handed on with the old call's counters would show the other 999 calls' frames
    assert 10 <= got["last_heard"] <= 20, got
    assert got["last_frames_rx"] < 40, got
    assert got["earlier_max"] < 10, got  # no earlier call heard the later calls' audio
