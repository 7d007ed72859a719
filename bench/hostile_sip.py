"""10,000 malformed or hostile SIP messages against the real hotline (issue 15, acceptance 2): nothing crashes,
every broken request is refused, the worker's memory stays flat, and the next valid call connects.

Runs `hotline serve` (Kamailio, one IVR worker, the hub) in a temporary home; 1 message in 5 goes to the front
door (Kamailio), the rest straight to the worker. The worker's RSS is read after the first and the second half,
each time once pjsip has dropped the refused INVITEs' transactions (timer H, 32 s): the second half must not grow
it by more than max(10 MB, 10 %). The test suite sends 1,400 of the same messages (tests/test_faults.py).

    nice .venv/bin/python bench/hostile_sip.py [--count 10000]

Prints the figures and writes bench/results/hostile_sip.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hostile_sip  # noqa: E402
from tests.hotline_proc import Hotline, pid_of  # noqa: E402

SETTLE_S = 35.0


def worker_pid(h: Hotline) -> int:
    pid = pid_of(h, "hotline worker --index 0")
    if pid is None:
        raise SystemExit("worker 0 is not running")
    return pid


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        h = Hotline(Path(tmp) / "home", workers=1, extra_env={"HOTLINE_SIP__ACL": '["127.0.0.1/32"]'}).start()
        try:
            pid = worker_pid(h)
            rss0 = hostile_sip.rss_kb(pid)
            messages = hostile_sip.hostile_messages("127.0.0.1", h.sip_port, args.count)
            half = len(messages) // 2
            replies: dict[str, int] = {}
            rss: list[int] = []
            t0 = time.monotonic()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 5999 if hostile_sip.free(5999) else 0))
                s.settimeout(0.004)
                for part in (messages[:half], messages[half:]):
                    # the offset keeps message i's target the same as in one pass (half is a multiple of 5)
                    hostile_sip.send(s, part, [h.sip_port] + [h.worker_base] * 4, replies)
                    time.sleep(SETTLE_S)
                    rss.append(hostile_sip.rss_kb(pid))
            took = time.monotonic() - t0 - 2 * SETTLE_S
            flood = hostile_sip.flood_from_disallowed(h.sip_port, h.worker_base)
            alive = h.proc.alive() and worker_pid(h) == pid
            call = h.dial("--duration", "2")
        finally:
            stopped = h.stop()
    grown_kb = rss[1] - rss[0]
    result = {
        "count": args.count, "send_s": round(took, 1), "replies": dict(sorted(replies.items())),
        "flood_from_outside_acl": flood, "worker_rss_mb": {"start": round(rss0 / 1024, 1),
                                                           "after_half": round(rss[0] / 1024, 1),
                                                           "after_all": round(rss[1] / 1024, 1)},
        "refused_all": hostile_sip.refused_all(replies), "processes_alive": alive,
        "valid_call_connected": bool(call.get("connected")), "clean_stop": stopped == 0,
        "rss_flat": grown_kb < max(10 * 1024, rss[0] // 10), "machine": platform.node(),
    }
    print(f"{args.count} hostile messages sent in {took:.0f} s; replies by kind: {result['replies']}")
    print(f"flood from 127.0.0.2: {flood}")
    print(f"worker RSS: start {rss0 / 1024:.1f} MB, after {half} {rss[0] / 1024:.1f} MB, after {args.count} "
          f"{rss[1] / 1024:.1f} MB (growth {grown_kb / 1024:+.1f} MB, ratio {rss[1] / rss[0]:.3f})")
    print(f"broken requests all refused: {result['refused_all']}; processes alive: {alive}; "
          f"next valid call connected: {result['valid_call_connected']}")
    out = ROOT / "bench" / "results" / "hostile_sip.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ok = all(result[k] for k in ("refused_all", "processes_alive", "valid_call_connected", "rss_flat"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
