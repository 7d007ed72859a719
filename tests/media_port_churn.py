"""Churn media ports in a real pjsua2 bridge while its clock runs (a subprocess of tests/test_media_port_pool.py).

    python tests/media_port_churn.py pool 1000       # take / give back one pooled port 1000 times
    python tests/media_port_churn.py destroy 1000    # make and drop a port each time (the old way: SIGSEGV)

Each cycle a tone generator transmits into the port for ~1 ms, so the clock thread calls it. Prints one JSON line:
cycles, ports created, frames the last call's callback got and its port counted, the most any earlier call got.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.sip.media_port import CallMediaPort, PortPool  # noqa: E402

RATE = 8000


def main() -> None:
    mode, cycles = sys.argv[1], int(sys.argv[2])
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.medConfig.clockRate = RATE
    cfg.medConfig.sndClockRate = RATE
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()  # the bridge's clock, as in a worker
    ep.libStart()
    loop = asyncio.new_event_loop()
    tone = pj.ToneGenerator()
    tone.createToneGenerator(RATE, 1)
    desc = pj.ToneDesc()
    desc.freq1, desc.freq2, desc.on_msec, desc.off_msec = 400, 0, 1000, 0
    tones = pj.ToneDescVector()
    tones.append(desc)
    tone.play(tones, True)
    pool = PortPool(RATE)
    heard: dict[int, int] = {}

    def hearer(n: int):
        def on_audio(data: bytes) -> None:  # called from the loop: count 20 ms frames per call
            heard[n] = heard.get(n, 0) + len(data) // (RATE * 2 // 50)
        return on_audio

    port = None
    for n in range(cycles):
        if mode == "destroy":
            port = CallMediaPort(f"p{n}", RATE, loop, hearer(n), 40.0, batch_frames=1)
        else:
            port = pool.take(f"p{n}", loop, hearer(n), 40.0, batch_frames=1)
        tone.startTransmit(port)
        time.sleep(0.001 if n < cycles - 1 else 0.3)  # the last call hears 300 ms
        tone.stopTransmit(port)
        if n < cycles - 1:
            if mode == "destroy":
                port = None  # its last reference: the port is destroyed here, mid-run
            else:
                pool.give_back(port)
    last = cycles - 1
    loop.run_until_complete(asyncio.sleep(0.05))  # the hand-offs queued by the clock thread
    stats = port.stats
    print(json.dumps({"cycles": cycles, "created": pool.created, "last_heard": heard.get(last, 0),
                      "last_frames_rx": stats.frames_rx,
                      "earlier_max": max((v for k, v in heard.items() if k != last), default=0)}), flush=True)
    ep.audDevManager().setNoDev()  # no clock while the ports go: nothing calls a port being destroyed
    port = None
    pool.clear()
    gc.collect()
    del tone
    ep.libDestroy()


if __name__ == "__main__":
    main()
