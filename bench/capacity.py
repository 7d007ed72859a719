"""Capacity: C concurrent 30 s calls through Kamailio into the IVR's DTMF menu, RTP both ways.

For each C: setup success rate, CPU of the workers / Kamailio / sipp (% of one core), RSS per worker,
caller frames per second per call and frame gaps > 40 ms at the workers' media ports.
Prints a table and writes bench/results/capacity.json.

    .venv/bin/python bench/capacity.py --calls 20 40 60 80
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hotline_proc import Hotline  # noqa: E402
from tests.sipsupport import free_udp_port, link_pcaps, sipp_argv  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def pids_of(home: Path, pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    mine = []
    for pid in map(int, out):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"HOTLINE_HOME={home}".encode() in env or pattern == "kamailio":
            mine.append(pid)
    return mine


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def kamailio_pids(home: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"{home}/run/kamailio.cfg"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def run_one(calls: int, work: Path, duration_s: int = 30) -> dict:
    home = work / f"c{calls}"
    shutil.rmtree(home, ignore_errors=True)  # records of an earlier run must not count
    workers = math.ceil(calls / 4) + 1
    h = Hotline(home, workers=workers, extra_env={"HOTLINE_LOG__LEVEL": "warning"}).start(timeout=90)
    try:
        link_pcaps(home)
        rate = 10
        args = sipp_argv([
            "-sf", str(ROOT / "bench/sipp/uac_rtp_30s.xml"), "-s", "12368", f"127.0.0.1:{h.sip_port}",
            "-i", "127.0.0.1", "-bind_local", "-p", str(free_udp_port()), "-mp", str(free_udp_port(tcp=False)),
            "-m", str(calls), "-l", str(calls), "-r", str(rate), "-d", "0", "-recv_timeout", "20000",
            "-default_behaviors", "all,-bye", "-trace_stat", "-stf", str(home / "sipp_stat.csv")],
            duration_s + 60)
        sipp = subprocess.Popen(args, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ramp = calls / rate + 2
        time.sleep(ramp)
        wp = pids_of(home, "hotline worker --index")
        kp = kamailio_pids(home)
        t0 = time.monotonic()
        c0 = (cpu_ticks(wp), cpu_ticks(kp), cpu_ticks([sipp.pid]))
        window = duration_s - ramp - 3
        time.sleep(window)
        c1 = (cpu_ticks(wp), cpu_ticks(kp), cpu_ticks([sipp.pid]))
        wall = time.monotonic() - t0
        rss = [rss_mb(p) for p in wp]
        sipp_code = sipp.wait(duration_s + 90)
        try:
            records = h.wait_calls(lambda c: len(c) >= calls and not any(x["status"] in ("offered", "answered")
                                                                        for x in c), timeout=40)
        except AssertionError:
            records = h.calls(limit=1000)  # report what is there; the open ones count as not settled
    finally:
        h.stop(60)
    answered = [r for r in records if r["answered_at"] and r["ended_at"]]
    media = [r["media"] or {} for r in answered]
    frames = sum(m.get("frames_rx", 0) for m in media)
    gaps = sum(m.get("gaps", 0) for m in media)
    per_call_fps = []
    for r in answered:
        a = datetime.fromisoformat(r["answered_at"])
        e = datetime.fromisoformat(r["ended_at"])
        secs = (e - a).total_seconds()
        if secs > 1 and r["media"]:
            per_call_fps.append(r["media"]["frames_rx"] / secs)
    pct = lambda ticks: round(100.0 * ticks / TICK / wall, 1)  # noqa: E731 - % of one core
    return {
        "calls": calls,
        "workers": workers,
        "setup_success_pct": round(100.0 * len(answered) / calls, 2),
        "sipp_exit": sipp_code,
        "worker_cpu_pct": pct(c1[0] - c0[0]),
        "kamailio_cpu_pct": pct(c1[1] - c0[1]),
        "sipp_cpu_pct": pct(c1[2] - c0[2]),
        "worker_rss_mb_avg": round(sum(rss) / len(rss), 1) if rss else None,
        "frames_per_s_per_call": round(sum(per_call_fps) / len(per_call_fps), 2) if per_call_fps else None,
        "frames_total": frames,
        "gaps_over_40ms": gaps,
        "late_frames_pct": round(100.0 * gaps / frames, 4) if frames else None,
        "max_gap_ms": max((m.get("max_gap_ms", 0) for m in media), default=0),
        "records": len(records),
        "end_causes": sorted({str(r["end_cause"]) for r in records}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, nargs="+", default=[20, 40, 60, 80])
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "capacity.json")
    args = ap.parse_args()
    results = []
    for c in args.calls:
        print(f"… {c} concurrent calls", flush=True)
        results.append(run_one(c, args.work))
        print(json.dumps(results[-1]), flush=True)
    cols = ["calls", "workers", "setup_success_pct", "worker_cpu_pct", "kamailio_cpu_pct", "sipp_cpu_pct",
            "worker_rss_mb_avg", "frames_per_s_per_call", "gaps_over_40ms", "late_frames_pct", "max_gap_ms"]
    print("\n" + " | ".join(cols))
    for r in results:
        print(" | ".join(str(r[c]) for c in cols))
    goal = next((r for r in results if r["calls"] == 60), None)
    if goal:
        ok = goal["setup_success_pct"] == 100 and (goal["late_frames_pct"] or 0) < 0.1
        print(f"\ngoal (60 calls, no failed setups, < 0.1 % late frames): {'met' if ok else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
