#!/usr/bin/env python3
"""When the final text is there, by ``asr.endpoint.speculative_ms`` (issue 14, part 1): one caller, no SIP.

Each of the 30 recorded questions (tests/data/speech) is fed in real time, in the IVR's 100 ms chunks, to a
recognizer session (``asr.stream.StreamSession``) over the real decode queue and whisper base, for each setting
given. Measured from the end of the clip's voiced audio (last 20 ms frame above -40 dBFS): when the endpointer
heard the speech end, when the speculative decode was submitted and done, when its text was told, the endpoint,
and the final. With ``--long N`` the first N rendered 13-42 s utterances with pauses (tests/data/speech_turns/long)
count speculative decodes started, used and wasted (a pause the caller went on after).

    nice .venv/bin/python bench/speculation.py [--ms 150 40] [--long 10]

Prints p50/p95 per setting and writes bench/results/speculation.json. Runs in real time: ~3 min per setting, and
~4 min more per setting for ``--long 10``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from answer_latency import voiced_end_s  # noqa: E402

from asr.audio import read_wav  # noqa: E402
from asr.decode_queue import PRIORITY_ANSWER, PRIORITY_PARTIAL, DecodeQueue  # noqa: E402
from asr.metrics import cer  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.stream import StreamSession  # noqa: E402
from asr.whisper_engine import WhisperEngine  # noqa: E402

SPEECH = ROOT / "tests" / "data" / "speech"
LONG = ROOT / "tests" / "data" / "speech_turns" / "long"
CHUNK_MS = 100
STEPS = ("vad_end", "spec_submitted", "spec_done", "spec_told", "endpoint", "final")


def feed(queue: DecodeQueue, settings: AsrSettings, path: Path, counters: Counter, whole: bool) -> dict:
    """One clip in real time: the seconds after its voiced end at which each step happened (first time)."""
    pcm, rate = read_wav(path)
    pcm = np.concatenate([np.zeros(rate // 2, np.int16), pcm, np.zeros(rate * 2, np.int16)])
    end = 0.5 + voiced_end_s(path)
    t0 = time.perf_counter()
    seen: dict = {}

    def now() -> float:
        return round(time.perf_counter() - t0 - end, 3)

    def submit(p, r, kind):
        fut = queue.submit(p, r, PRIORITY_PARTIAL if kind == "partial" else PRIORITY_ANSWER, optional=True)
        if kind == "speculative":
            seen.setdefault("spec_submitted", now())
            fut.add_done_callback(lambda _f: seen.setdefault("spec_done", now()))
        return fut

    session = StreamSession(rate, settings, decode=lambda p, r: queue.decode(p, r), submit=submit, counters=counters)
    n = rate * CHUNK_MS // 1000
    for k in range(0, len(pcm), n):
        time.sleep(max(0.0, t0 + (k + n) / rate - time.perf_counter()))
        for event in session.feed(pcm[k:k + n]) + session.poll():
            name = type(event).__name__
            if name == "Speculative":
                seen.setdefault("spec_told", now())
            elif name == "Final" and "final" not in seen:
                seen.update(final=now(), text=event.text, vad_end=round(event.timings["speech_end_s"] - end, 3),
                            endpoint=round(event.timings["endpoint_s"] - end, 3))
        if "final" in seen and not whole:
            break
    return seen


def pct(values: list[float]) -> dict:
    return {"p50": round(float(np.median(values)), 3), "p95": round(float(np.percentile(values, 95)), 3),
            "n": len(values)} if values else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ms", type=int, nargs="+", default=[150, 40], help="speculative_ms settings to compare")
    ap.add_argument("--long", type=int, default=0, help="also count wasted speculations on N long utterances")
    args = ap.parse_args()
    refs = {r["file"]: r["text"] for r in map(json.loads, (SPEECH / "transcripts.jsonl").read_text().splitlines())}
    questions = [SPEECH / f"q{i:02d}.wav" for i in range(1, 31)]
    out: dict = {"machine": f"{platform.node()} {platform.machine()}", "chunk_ms": CHUNK_MS, "settings": {}}
    base = AsrSettings()
    engine = WhisperEngine(base.whisper_dir(ROOT / "var"), base)
    engine.transcribe(*read_wav(questions[0]))  # warm-up
    for ms in args.ms:
        settings = AsrSettings()
        settings.endpoint.speculative_ms = ms
        queue = DecodeQueue(engine.transcribe_many, partial_beam_size=1, lanes=settings.decode_lanes)
        counters: Counter = Counter()
        rows = [feed(queue, settings, q, counters, whole=False) for q in questions]
        res = {step: pct([r[step] for r in rows if step in r]) for step in STEPS}
        res["cer"] = round(cer([(refs[q.name], r.get("text", "")) for q, r in zip(questions, rows, strict=True)]), 4)
        res["questions_counters"] = dict(counters)
        if args.long:
            long_counters: Counter = Counter()
            for path in sorted(LONG.glob("*.wav"))[:args.long]:
                feed(queue, settings, path, long_counters, whole=True)
            res["long_counters"] = dict(long_counters)
        out["settings"][str(ms)] = res
        print(f"speculative_ms {ms}: final p50 {res['final'].get('p50')} p95 {res['final'].get('p95')} s after the "
              f"voice (spec done {res['spec_done'].get('p50')} / {res['spec_done'].get('p95')}, endpoint "
              f"{res['endpoint'].get('p50')}); CER {res['cer']}; questions {res['questions_counters']}"
              + (f"; long {res['long_counters']}" if args.long else ""), flush=True)
    dest = ROOT / "bench" / "results" / "speculation.json"
    dest.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
