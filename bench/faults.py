"""Fault campaign (issue 15, acceptance 1) against the real hotline: nothing is lost when processes die.

Runs `hotline serve` (Kamailio, one IVR worker, the hub) in a temporary home, after hours (a holiday file closes
today), with a stand-in speech service (tests/fake_speech.py) that holds every message's transcription open:

1. ``--worker-kills`` times (20): a `hotline dial` caller presses 0 and leaves a message; while its transcription
   waits, the worker is killed with SIGKILL (the supervisor restarts it). At the end the speech service answers:
   every message must have its work order (filed from the MessageRecorded the dead worker had spooled) and,
   after the restarted worker resumes it, its transcript (one MessageTranscribed per message).
2. ``--hub-kills`` times (10): a caller sits in the menu for 8 s; 3 s in, the hub is killed with SIGKILL (the
   supervisor restarts it). Every event of the call in the worker's spool must be stored in the hub exactly once
   and the call record closed.
3. A hub that refuses one event: the worker's publisher sends 6 events, one the hub cannot store (422), 6 more:
   12 stored, the bad one in the dead-letter file.

    nice .venv/bin/python bench/faults.py [--worker-kills 20] [--hub-kills 10]

Prints a table (test, count, lost) and writes bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.contract import CallAnswered, CallOffered, DigitsReceived, MenuEntered  # noqa: E402
from ivr.publisher import EventPublisher, Spool, dead_letter_count  # noqa: E402
from tests.fake_speech import FakeSpeech  # noqa: E402
from tests.hotline_proc import Hotline, pid_of, sip_ping  # noqa: E402

SPEECH = ROOT / "tests" / "data" / "speech"
RESULTS = ROOT / "bench" / "results" / "faults.json"


def wait(what, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(step)
    return None


def query(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(sql, args).fetchall()


def worker_kills(h: Hotline, speech: FakeSpeech, n: int) -> dict:
    db = h.home / "hotline.db"
    calls: list[str] = []
    restart_s: list[float] = []
    for i in range(n):
        before = {r[0] for r in query(db, "SELECT call_id FROM calls")}
        ended = speech.streams_ended
        out = h.dial("--dtmf", "wait:1,0", "--play", str(SPEECH / "q29.wav"), "--play-at", "8", "--duration", "40",
                     timeout=60)
        new = wait(lambda b=before: {r[0] for r in query(db, "SELECT call_id FROM calls")} - b, 15)
        call_id = next(iter(new)) if new else None
        if call_id:
            calls.append(call_id)
        if not wait(lambda: speech.streams_ended > ended, 20):  # noqa: B023 - read now
            print(f"  kill {i + 1}: the transcription never started (caller {out.get('connected')})")
        victim = pid_of(h, "hotline worker --index 0")
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        back = wait(lambda: (p := pid_of(h, "hotline worker --index 0")) and p != victim  # noqa: B023
                    and sip_ping(h.worker_base) == 200, 15, 0.05)
        restart_s.append(time.monotonic() - t0 if back else float("nan"))
        print(f"  worker kill {i + 1}/{n}: call {call_id and call_id[:8]}, worker back after {restart_s[-1]:.2f} s")
    speech.answer = True  # now every resumed transcription gets its text
    placeholders = ",".join("?" * len(calls))

    def complete():
        orders = query(db, f"SELECT call_id, content FROM work_orders WHERE call_id IN ({placeholders})", *calls)
        texts = query(db, "SELECT call_id, count(*) FROM call_events WHERE type = 'message_transcribed' "
                          f"AND call_id IN ({placeholders}) GROUP BY call_id", *calls)
        done = len(orders) == n and all(speech.text in c for _, c in orders) and len(texts) == n
        return (orders, texts) if done else None

    wait(complete, 60, 0.5)
    orders = query(db, f"SELECT call_id, content FROM work_orders WHERE call_id IN ({placeholders})", *calls)
    texts = dict(query(db, "SELECT call_id, count(*) FROM call_events WHERE type = 'message_transcribed' "
                           f"AND call_id IN ({placeholders}) GROUP BY call_id", *calls))
    messages = dict(query(db, "SELECT call_id, count(*) FROM call_events WHERE type = 'message_recorded' "
                              f"AND call_id IN ({placeholders}) GROUP BY call_id", *calls))
    with_text = sum(speech.text in c for _, c in orders)
    return {"kills": n, "calls": len(calls), "messages": sum(messages.values()), "orders": len(orders),
            "orders_with_transcript": with_text, "transcripts": sum(texts.values()),
            "duplicate_transcripts": sum(v - 1 for v in texts.values() if v > 1),
            "lost_orders": n - len(orders), "lost_transcripts": n - with_text,
            "worker_back_s": sorted(round(x, 2) for x in restart_s)}


def spooled_events(h: Hotline, call_id: str) -> set[str]:
    out: set[str] = set()
    for f in (h.home / "spool").glob("w*.jsonl"):
        if f.name.endswith(".dead.jsonl"):
            continue
        for line in f.read_text().splitlines():
            if call_id in line:
                e = json.loads(line)
                if e.get("call_id") == call_id:
                    out.add(e["event_id"])
    return out


def hub_kills(h: Hotline, n: int) -> dict:
    db = h.home / "hotline.db"
    lost = dup = 0
    open_calls = 0
    per: list[dict] = []
    for i in range(n):
        before = {r[0] for r in query(db, "SELECT call_id FROM calls")}
        t = threading.Thread(target=h.dial, args=("--duration", "8"), kwargs={"timeout": 60})
        t.start()
        time.sleep(3)
        victim = pid_of(h, "hotline hub")
        os.kill(victim, signal.SIGKILL)
        t.join(60)
        wait(lambda: (p := pid_of(h, "hotline hub")) and p != victim, 30)  # noqa: B023
        new = wait(lambda b=before: {r[0] for r in query(db, "SELECT call_id FROM calls WHERE status = 'ended'")} - b,
                   30, 0.5)
        call_id = next(iter(new)) if new else None
        if call_id is None:
            open_calls += 1
            print(f"  hub kill {i + 1}/{n}: no ended call record")
            continue
        sent = spooled_events(h, call_id)
        stored = [r[0] for r in query(db, "SELECT event_id FROM call_events WHERE call_id = ?", call_id)]
        missing = len(sent - set(stored))
        lost += missing
        dup += len(stored) - len(set(stored))
        per.append({"call": call_id[:8], "spooled": len(sent), "stored": len(stored), "missing": missing})
        print(f"  hub kill {i + 1}/{n}: call {call_id[:8]} spooled {len(sent)} events, stored {len(stored)}, "
              f"missing {missing}")
    return {"kills": n, "calls_checked": len(per), "calls_not_closed": open_calls, "events_lost": lost,
            "events_duplicated": dup, "per_call": per}


def refused_event(h: Hotline, token: str) -> dict:
    spool_dir = Path(tempfile.mkdtemp(prefix="faults-spool-"))
    spool = Spool(spool_dir, "wx")
    pub = EventPublisher(spool, f"http://127.0.0.1:{h.hub_port}", token)
    good: list = []
    for call_id in ("dl-a", "dl-b"):
        k = {"call_id": call_id, "worker": "wx"}
        good += [CallOffered(**k, caller="13800000002", callee="12368", source="127.0.0.1:1"), CallAnswered(**k),
                 *[DigitsReceived(**k, node="main", digits=str(d)) for d in range(3)], MenuEntered(**k, node="main")]
    bad = MenuEntered(call_id="x" * 300, worker="wx", node="main")
    for e in good[:6] + [bad] + good[6:]:
        pub.emit(e)
    delivered = asyncio.run(pub.drain(20.0))
    spool.close()
    stored = sum(r[0] for r in query(h.home / "hotline.db",
                                     "SELECT count(*) FROM call_events WHERE call_id IN ('dl-a', 'dl-b')"))
    return {"sent": len(good) + 1, "stored": stored, "dead_lettered": dead_letter_count(spool_dir).get("wx", 0),
            "delivered_all": delivered, "lost": len(good) - stored}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker-kills", type=int, default=20)
    ap.add_argument("--hub-kills", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hotline-faults-"))
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    (work / "holidays.yaml").write_text(f"holidays: [{today}, {today + timedelta(days=1)}]\n", encoding="utf-8")
    speech = FakeSpeech().start()
    token = "worker-token-for-the-fault-campaign"
    h = Hotline(work / "home", workers=1, extra_env={
        "HOTLINE_IVR__WORKING_HOURS__MODE": "schedule",
        "HOTLINE_WORK_ORDERS__HOLIDAY_FILE": str(work / "holidays.yaml"),
        "HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_SPEECH__URL": speech.url, "HOTLINE_HUB__WORKER_TOKEN": token})
    t0 = time.monotonic()
    results: dict = {}
    try:
        h.start()
        print(f"worker SIGKILL after a message, {args.worker_kills}x:")
        results["worker_kills"] = worker_kills(h, speech, args.worker_kills)
        print(f"hub SIGKILL mid-call, {args.hub_kills}x:")
        results["hub_kills"] = hub_kills(h, args.hub_kills)
        results["refused_event"] = refused_event(h, token)
    finally:
        code = h.stop()
        speech.stop()
    w, hk, r = results["worker_kills"], results["hub_kills"], results["refused_event"]
    rows = [("worker SIGKILL during a message's transcription", w["kills"],
             f"{w['lost_orders']} orders, {w['lost_transcripts']} transcripts "
             f"({w['orders']} orders, {w['transcripts']} transcripts, {w['duplicate_transcripts']} duplicated)"),
            ("hub SIGKILL mid-call", hk["kills"],
             f"{hk['events_lost']} events, {hk['events_duplicated']} duplicated, {hk['calls_not_closed']} calls open"),
            ("hub refuses one event of a worker", 1,
             f"{r['lost']} of {r['sent'] - 1} good events; {r['dead_lettered']} in the dead-letter file")]
    print(f"\n{'test':<50} {'count':>5}  lost")
    for name, count, lost in rows:
        print(f"{name:<50} {count:>5}  {lost}")
    results.update(supervisor_exit=code, seconds=round(time.monotonic() - t0, 1), machine=platform.node(),
                   at=datetime.now().isoformat(timespec="seconds"),
                   note="shared, loaded machine (2 cores, several other test runs)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"\nwrote {RESULTS} ({results['seconds']} s)")
    ok = (w["lost_orders"] == 0 and w["lost_transcripts"] == 0 and hk["events_lost"] == 0
          and r["lost"] == 0 and r["dead_lettered"] == 1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
