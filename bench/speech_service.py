"""Saturation of the speech service: N callers speaking at once over its websocket protocol.

For each N: how many got their final text, how many were told "busy" at once (instead of waiting
without bound), and the latency from the end of their audio to the final, p50/p95/max, with the
service's max_wait_s bound. Prints a table and writes bench/results/speech_service.json.

    .venv/bin/python bench/speech_service.py --callers 4 8 16 32 --max-wait 2.0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402

from asr.audio import read_wav  # noqa: E402
from asr.service import SpeechService  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.whisper_engine import WhisperEngine  # noqa: E402

SPEECH = ROOT / "tests" / "data" / "speech"


def start_service(model_dir: Path, max_wait_s: float) -> tuple[str, callable, SpeechService]:
    settings = AsrSettings()
    engine = WhisperEngine(model_dir, settings)
    engine.transcribe(read_wav(SPEECH / "q01.wav")[0], 8000)  # warm up
    service = SpeechService(settings, engine.transcribe_many, max_wait_s=max_wait_s, session_threads=64)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    box: dict = {}

    async def main():
        from websockets.asyncio.server import serve

        async with serve(service.handle, "127.0.0.1", 0, max_size=1 << 20) as server:
            box["port"] = server.sockets[0].getsockname()[1]
            await stop.wait()

    threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True).start()
    while "port" not in box:
        time.sleep(0.05)
    return f"ws://127.0.0.1:{box['port']}", lambda: loop.call_soon_threadsafe(stop.set), service


async def caller(url: str, pcm: bytes) -> dict:
    """Speak in real time (100 ms chunks), then wait for the final; latency from the end of speech audio."""
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": 8000}}))
        t_speech_end = None
        speech_bytes = len(pcm) - 2 * 8000 * 2  # the clip ends with 2 s of silence
        for i in range(0, len(pcm), 1600):
            await ws.send(pcm[i:i + 1600])
            r = json.loads(await ws.recv())
            if t_speech_end is None and i + 1600 >= speech_bytes:
                t_speech_end = time.monotonic()
            if r.get("busy"):
                return {"outcome": "busy", "expected_wait_s": r.get("expected_wait_s")}
            if r.get("text"):
                return {"outcome": "final", "latency_s": time.monotonic() - (t_speech_end or time.monotonic())}
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"eof": 1}))
        r = json.loads(await ws.recv())
        if r.get("busy"):
            return {"outcome": "busy"}
        return {"outcome": "final" if r.get("text") else "none",
                "latency_s": time.monotonic() - (t_speech_end or time.monotonic())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callers", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--max-wait", type=float, default=2.0, help="the service's speech.max_wait_s")
    ap.add_argument("--model-dir", type=Path, default=ROOT / "var" / "models" / "whisper-base")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speech_service.json")
    args = ap.parse_args()
    url, stop, service = start_service(args.model_dir, args.max_wait)
    clips = []
    for i in range(1, 31):
        pcm, _ = read_wav(SPEECH / f"q{i:02d}.wav")
        clips.append(bytes(8000) + pcm.astype("<i2").tobytes() + bytes(2 * 8000 * 2))
    rows = []
    for n in args.callers:
        async def run(n=n):
            return await asyncio.gather(*(caller(url, clips[k % len(clips)]) for k in range(n)))

        results = asyncio.run(run())
        lat = sorted(r["latency_s"] for r in results if r["outcome"] == "final")
        row = {"callers": n, "finals": len(lat), "busy": sum(r["outcome"] == "busy" for r in results),
               "none": sum(r["outcome"] == "none" for r in results),
               "p50_s": round(statistics.median(lat), 3) if lat else None,
               "p95_s": round(lat[max(0, math.ceil(0.95 * len(lat)) - 1)], 3) if lat else None,
               "max_s": round(lat[-1], 3) if lat else None}
        rows.append(row)
        print(json.dumps(row), flush=True)
    stop()
    print(f"\nspeech service, max_wait_s={args.max_wait}: "
          "callers | finals | busy | p50 | p95 | max (s, end of speech → text)")
    for r in rows:
        print(f"{r['callers']:>7} | {r['finals']:>6} | {r['busy']:>4} | {r['p50_s']} | {r['p95_s']} | {r['max_s']}")
    # what an answered caller may wait: the end silence, the queue bound, and the batch it is decoded in
    bound = args.max_wait + 0.6 + 1.2
    worst = max((r["max_s"] or 0) for r in rows)
    print(f"worst answered latency {worst:.2f} s; bound (max_wait + end silence + one batch) {bound:.2f} s: "
          f"{'kept' if worst <= bound else 'EXCEEDED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"max_wait_s": args.max_wait, "stats": service.stats(), "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
