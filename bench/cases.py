"""Case self-service: what the hub adds between the caller's last digit and the status sentence.

Starts a hub (uvicorn on loopback, a fresh SQLite home with the demo cases) and times, over real HTTP with
the worker token, what an IVR worker sends: ``POST /internal/cases/lookup`` (keypad case number → read-back)
and ``POST /internal/cases/verify`` with the right 查询密码 (→ status sentence), each ``--runs`` times
with a new caller number; then the same lookup against the HTTP backend (a fake court system on loopback);
the import rate of ``hotline cases import`` (3 secrets a case, scrypt n=2^14 on every core); and, with
``--tts``, the voice: time to the first audio of the status sentence when its first clause is rendered
alone (cold, then cached) and the whole sentence cold. Prints a table and writes bench/results/cases.json.

    .venv/bin/python bench/cases.py [--runs 200] [--import-cases 300] [--tts]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from agent_console.app import create_app  # noqa: E402
from agent_console.config import HubConfig  # noqa: E402
from court_cases.demo import apply_import, load_demo_if_empty  # noqa: E402
from court_cases.io import DEMO_CASES_PATH, read_cases  # noqa: E402
from court_cases.settings import CaseSettings  # noqa: E402
from hotline.db import make_engine, session_factory, upgrade_engine  # noqa: E402

TOKEN = "bench-worker-token-0123456789"
KEYPAD = "2026*440305*1*1234#"
PASSWORD = "123456"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 0.95), 2),
            "max_ms": round(max(ms), 2), "n": len(ms)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return server


def fake_court(case: dict) -> ThreadingHTTPServer:
    body = json.dumps(case, ensure_ascii=False).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 65536  # headers and body in one segment (no Nagle / delayed-ACK stall of 40 ms)

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def time_hub(url: str, runs: int, *, verify: bool) -> dict[str, dict[str, float]]:
    lookup_ms, verify_ms = [], []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
        for i in range(runs + 5):
            caller = f"139{i:08d}"
            t = time.perf_counter()
            r = c.post("/internal/cases/lookup", json={"number": KEYPAD, "caller": caller})
            t1 = time.perf_counter()
            assert r.json()["result"] == "found", r.text
            if verify:
                r = c.post("/internal/cases/verify", json={"number": KEYPAD, "secret": PASSWORD, "caller": caller})
                t2 = time.perf_counter()
                assert r.json()["result"] == "ok" and r.json()["status"], r.text
            if i >= 5:  # warm-up
                lookup_ms.append((t1 - t) * 1000)
                if verify:
                    verify_ms.append((t2 - t1) * 1000)
    out = {"lookup": summary(lookup_ms)}
    if verify:
        out["verify_with_status"] = summary(verify_ms)
    return out


def bench_tts(status: str) -> dict[str, float]:
    from tts.renderer import Renderer

    venv = ROOT / "var" / "tts-venv"
    with tempfile.TemporaryDirectory() as cache:
        r = Renderer(venv, Path(cache))
        r.render_info("您好。")  # start the synthesizer (tensorflow) outside the timing
        first = status.split("。")[0] + "。"
        cold_first = r.render_info(first)
        warm_first = r.render_info(first)
        whole = r.render_info(status)
        r.close()
    return {"first_clause_chars": len(first), "first_clause_cold_ms": round(cold_first.render_s * 1000, 1),
            "first_clause_audio_s": round(cold_first.seconds, 2),
            "first_clause_cached_ms": round(warm_first.render_s * 1000, 2),
            "whole_sentence_chars": len(status), "whole_sentence_cold_ms": round(whole.render_s * 1000, 1),
            "whole_sentence_audio_s": round(whole.seconds, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--import-cases", type=int, default=300)
    ap.add_argument("--tts", action="store_true", help="also time the voice (needs var/tts-venv)")
    args = ap.parse_args()
    results: dict = {"when": datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
                     "cpus": os.cpu_count(), "runs": args.runs}

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/hub.db")
        upgrade_engine(engine)
        with session_factory(engine)() as db:
            load_demo_if_empty(db)
            db.commit()
        port = free_port()
        app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False), engine)
        server = serve(app, port)
        try:
            results["demo_store"] = time_hub(f"http://127.0.0.1:{port}", args.runs, verify=True)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                status = c.post("/internal/cases/verify", json={"number": KEYPAD, "secret": PASSWORD,
                                                                "caller": "13800000000"}).json()["status"]
        finally:
            server.should_exit = True
            time.sleep(0.3)
        results["status_sentence"] = status

        case = json.loads(DEMO_CASES_PATH.read_text(encoding="utf-8"))[0]
        court_case = {**{k: v for k, v in case.items() if k not in ("hearing_at", "hearing_place", "query_password")},
                      "parties": [{"role": p.split(":")[0], "name": p.split(":")[1]} for p in case["parties"]],
                      "next_hearing": {"at": case["hearing_at"], "place": case["hearing_place"]}}
        court = fake_court(court_case)
        cases = CaseSettings(backend="http", url=f"http://127.0.0.1:{court.server_port}", token="t")
        app2 = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False, cases=cases),
                          engine)
        port2 = free_port()
        server2 = serve(app2, port2)
        try:
            results["http_backend"] = time_hub(f"http://127.0.0.1:{port2}", args.runs, verify=False)
        finally:
            server2.should_exit = True
            court.shutdown()
            time.sleep(0.3)

        doc = [{**case, "case_number": f"（2027）粤0305民初{i}号", "lookup_number": f"{27000000 + i}"}
               for i in range(1, args.import_cases + 1)]
        data = json.dumps(doc, ensure_ascii=False).encode()
        t = time.perf_counter()
        rows = read_cases(data, "json")
        validate_s = time.perf_counter() - t
        with session_factory(engine)() as db:
            apply_import(db, rows, "bench")
            db.commit()
        total_s = time.perf_counter() - t
        results["import"] = {"cases": len(rows), "secrets_per_case": 3, "validate_per_s": round(len(rows) / validate_s),
                             "cases_per_s": round(len(rows) / total_s, 1)}
        engine.dispose()

    if args.tts:
        results["tts"] = bench_tts(status)

    print(f"status sentence ({len(status)} chars): {status}")
    print(f"{'what':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for label, key, part in (("lookup, demo store", "demo_store", "lookup"),
                             ("verify + status, demo store", "demo_store", "verify_with_status"),
                             ("lookup, HTTP backend (loopback)", "http_backend", "lookup")):
        s = results[key][part]
        print(f"{label:<34} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['max_ms']:>8}")
    imp = results["import"]
    print(f"import: {imp['cases_per_s']} cases/s with {imp['secrets_per_case']} hashed secrets each "
          f"(validation alone {imp['validate_per_s']} cases/s)")
    if "tts" in results:
        t = results["tts"]
        print(f"tts: first clause ({t['first_clause_chars']} chars) cold {t['first_clause_cold_ms']} ms, cached "
              f"{t['first_clause_cached_ms']} ms; whole sentence ({t['whole_sentence_chars']} chars, "
              f"{t['whole_sentence_audio_s']} s of audio) cold {t['whole_sentence_cold_ms']} ms")
    out = ROOT / "bench" / "results" / "cases.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
