"""Issue 17: what hosts of each role hold, measured with 1, 2 and 3 hosts in network namespaces on this machine.

hubs: host a runs Redis, PostgreSQL and hub 1; hosts b and c run hubs 2 and 3. The hubs share the live state
through Redis (one decides, the others forward). Simulated IVR workers on host d send the events of C live calls
the way workers do (offer, answer, menus, then a partial every 0.5 s and a final every 3 s per call: a caller
talking without pause, bench/ops_latency.py's load), each worker to one hub, spread as HAProxy spreads them; a
supervisor's console on hub 1 receives every call's lines. Per row: events/s, CPU of all hubs per 100 events/s
(% of one core), the deciding hub's share, Redis's and PostgreSQL's, and event → console latency p50/p95.

ivr: Kamailio on host a, 1, 2 or 3 IVR hosts (b, c, e; ``--workers`` each) behind it; sipp on host d places C
concurrent 30 s calls with G.711 RTP both ways into the DTMF menu (bench/sipp/uac_rtp_30s.xml). Per row: setup
success, worker CPU per call (% of one core), and from it the calls one 2-core IVR host holds at 70 % CPU.

Every host shares this machine's 2 cores, so totals do not grow with hosts here: the per-event and per-call costs
are what size real hosts. Needs root (network namespaces), redis-server, PostgreSQL, Kamailio and sipp.

    .venv/bin/python bench/multi_host.py [--calls 40] [--seconds 30] [--ivr-calls 24]
Writes bench/results/multi_host.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ops_latency import Call, cpu_s, watch, worker  # noqa: E402
from tests.hotline_proc import sip_ping  # noqa: E402
from tests.netns_support import Hosts, netns_unavailable  # noqa: E402
from tests.ops_support import TOKEN, login_cookie  # noqa: E402
from tests.pg_support import LocalPostgres  # noqa: E402
from tests.sipsupport import link_pcaps, sipp_argv  # noqa: E402

HOTLINE = [sys.executable, "-m", "hotline"]
HOSTS = ["a", "b", "c", "e", "d"]  # d: the load; a: Redis, PostgreSQL, Kamailio, hub 1


def base_env(home: Path, db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({"HOTLINE_HOME": str(home), "HOTLINE_DATABASE_URL": db_url, "HOTLINE_REDIS__URL": redis_url,
                "HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_HUB__COOKIE_SECURE": "false",
                "HOTLINE_LOG__LEVEL": "warning", "HOTLINE_SPEECH__ENABLED": "false",
                "HOTLINE_SIP__MAX_CALLS_PER_CALLER": "0", "HOTLINE_IVR__WORKING_HOURS__MODE": "open"})
    env.update(extra)
    return env


def wait(check, what: str, timeout: float = 90.0) -> None:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.3)


def pids_in(hosts: Hosts, name: str, needle: str) -> list[int]:
    out = []
    for pid in hosts.pids(name):
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                out.append(pid)
    return out


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            total += cpu_s(pid)
    return total


class Site:
    """Redis and PostgreSQL on host a, and what runs on the hosts."""

    def __init__(self, hosts: Hosts, work: Path):
        self.hosts, self.work = hosts, work
        self.a = hosts.addr["a"]
        self.procs: list[subprocess.Popen] = []
        (work / "redis").mkdir(parents=True, exist_ok=True)
        self.redis = hosts.run("a", ["redis-server", "--port", "6379", "--bind", self.a, "--protected-mode", "no",
                                     "--save", "", "--appendonly", "yes", "--dir", str(work / "redis")],
                               log=work / "redis" / "redis.log")
        with hosts.inside("a"):
            self.pg = LocalPostgres(host=self.a).start()
        self.redis_url = f"redis://{self.a}:6379/0"

    def new_db(self) -> str:
        with self.hosts.inside("a"):
            return self.pg.create_database()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        home = Path(env["HOTLINE_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        p = self.hosts.run(name, [*HOTLINE, *argv], log=home / "out.log", env=env, cwd=ROOT)
        self.procs.append(p)
        return p

    def healthy(self, url: str) -> bool:
        return self.hosts.http_ok("d", url)

    def stop_all(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 15)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(30)
        self.procs.clear()

    def close(self) -> None:
        self.stop_all()
        self.redis.terminate()
        self.pg.stop()


# ====================================================================================== hubs
async def hub_load(urls: list[str], watch_url: str, cookie: str, calls: int, seconds: float) -> dict:
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    posts: list[float] = []
    stop = time.monotonic() + seconds
    workers = (calls + 3) // 4
    async with httpx.AsyncClient(timeout=30) as client:
        tasks = [asyncio.create_task(watch(watch_url, cookie, sent, got, stop))]
        await asyncio.sleep(0.5)
        made = [Call(f"w{w}", i) for w in range(workers) for i in range(4)][:calls]
        tasks += [asyncio.create_task(worker(f"w{w}", [c for c in made if c.worker == f"w{w}"], client,
                                             f"{urls[w % len(urls)]}/internal/events", stop, sent, 0.1, posts))
                  for w in range(workers)]
        await asyncio.gather(*tasks)
    lat = sorted(v * 1000 for v in got.values())
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"events_sent": len(sent), "events_seen": len(got), "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1)}


def run_hubs(site: Site, n: int, calls: int, seconds: float) -> dict:
    db_url = site.new_db()
    names = ["a", "b", "c"][:n]
    urls = [f"http://{site.hosts.addr[x]}:8368" for x in names]
    hubs = []
    for i, name in enumerate(names):
        env = base_env(site.work / f"hubs{n}" / name, db_url, site.redis_url, HOTLINE_HUB__HOST=site.hosts.addr[name])
        hubs.append(site.start(name, ["hub"], env))
        wait(lambda u=urls[i]: site.healthy(u), f"hub {name}")  # one at a time: the first migrates the database
    add = subprocess.run(site.hosts.argv("a", [*HOTLINE, "users", "add", "sup", "--role", "supervisor", "--password",
                                               "password123"]),
                         env=base_env(site.work / f"hubs{n}" / "a", db_url, site.redis_url), capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert add.returncode == 0, add.stderr
    try:
        with site.hosts.inside("d"):
            cookie = login_cookie(type("H", (), {"url": urls[0]})(), "sup")
        time.sleep(3)  # the lease is taken
        pids = [h.pid for h in hubs]
        pg_pids = pids_in(site.hosts, "a", "postgres")
        c0 = [cpu_of([p]) for p in pids], cpu_of([site.redis.pid]), cpu_of(pg_pids)
        t0 = time.monotonic()
        with site.hosts.inside("d"):
            r = asyncio.run(hub_load(urls, urls[0].replace("http://", "ws://") + "/ws/operator", cookie, calls,
                                     seconds))
        wall = time.monotonic() - t0
        c1 = [cpu_of([p]) for p in pids], cpu_of([site.redis.pid]), cpu_of(pg_pids)
    finally:
        site.stop_all()
    rate = r["events_sent"] / wall
    per100 = lambda cpu: round(100 * cpu / wall / rate * 100, 1)  # noqa: E731 - % of one core per 100 events/s
    hub_cpu = [b - a for a, b in zip(c0[0], c1[0], strict=True)]
    deciding = next((i for i, name in enumerate(names)
                     if "decides now" in (site.work / f"hubs{n}" / name / "out.log").read_text(errors="replace")), 0)
    return {"hubs": n, "calls": calls, "events_per_s": round(rate, 1), "events_seen": r["events_seen"],
            "events_sent": r["events_sent"], "hubs_cpu_per_100_eps": per100(sum(hub_cpu)),
            "deciding_hub_cpu_per_100_eps": per100(hub_cpu[deciding]),
            "other_hubs_cpu_per_100_eps": per100(sum(hub_cpu) - hub_cpu[deciding]),
            "redis_cpu_per_100_eps": per100(c1[1] - c0[1]), "postgres_cpu_per_100_eps": per100(c1[2] - c0[2]),
            "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"]}


# ====================================================================================== IVR hosts
def run_ivr(site: Site, n: int, calls: int, workers: int) -> dict:
    calls = min(calls, n * workers * 3)  # three of a worker's four call slots (the pjsua2 wheel's limit)
    db_url = site.new_db()
    a = site.a
    ivr = ["b", "c", "e"][:n]
    remote = [f"{site.hosts.addr[x]}:{5070 + i}" for x in ivr for i in range(workers)]
    front_env = base_env(site.work / f"ivr{n}" / "a", db_url, site.redis_url, HOTLINE_SIP__HOST=a,
                         HOTLINE_HUB__HOST=a, HOTLINE_SIP__REMOTE_WORKERS=json.dumps(remote))
    site.start("a", ["serve", "--roles", "front,hub"], front_env)
    wait(lambda: site.healthy(f"http://{a}:8368"), "front and hub")
    for x in ivr:
        addr = site.hosts.addr[x]
        env = base_env(site.work / f"ivr{n}" / x, db_url, site.redis_url, HOTLINE_SIP__HOST=a,
                       HOTLINE_SIP__WORKER_HOST=addr, HOTLINE_SIP__WORKER_PREFIX=f"{x}-",
                       HOTLINE_SIP__WORKERS=str(workers), HOTLINE_HUB__PUBLIC_URL=f"http://{a}:8368")
        site.start(x, ["serve", "--roles", "ivr"], env)

        def up(x: str = x, addr: str = addr) -> bool:
            with site.hosts.inside(x):
                return all(sip_ping(5070 + i, host=addr) == 200 for i in range(workers))

        wait(up, f"the workers of {x}")
    time.sleep(4)  # Kamailio's probes find them
    work = site.work / f"ivr{n}" / "sipp"
    work.mkdir(parents=True, exist_ok=True)
    link_pcaps(work)
    d = site.hosts.addr["d"]
    argv = sipp_argv(["-sf", str(ROOT / "bench/sipp/uac_rtp_30s.xml"), "-s", "12368", f"{a}:5060", "-i", d,
                      "-p", "5099", "-mp", "30000", "-m", str(calls), "-l", str(calls), "-r", "10", "-d", "0",
                      "-recv_timeout", "20000", "-default_behaviors", "all,-bye"], 100)
    try:
        sipp = site.hosts.run("d", argv, log=work / "sipp.log", cwd=work)
        ramp = calls / 10 + 2
        time.sleep(ramp)
        wp = [p for x in ivr for p in pids_in(site.hosts, x, "worker --index")]
        c0, t0 = cpu_of(wp), time.monotonic()
        time.sleep(30 - ramp - 3)
        c1, wall = cpu_of(wp), time.monotonic() - t0
        code = sipp.wait(120)
    finally:
        site.stop_all()
    stat = (work / "sipp.log").read_text(errors="replace")
    found = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", stat)
    ok = int(found[-1]) if found else calls
    per_call = 100 * (c1 - c0) / wall / max(ok, 1)
    return {"ivr_hosts": n, "workers_per_host": workers, "calls": calls, "successful": ok, "sipp_exit": code,
            "worker_cpu_pct": round(100 * (c1 - c0) / wall, 1), "worker_cpu_pct_per_call": round(per_call, 2),
            "calls_per_2_core_host_at_70pct": int(140 / per_call) if per_call > 0 else None,
            "sipp_tail": stat[-300:] if code else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=40, help="live calls whose events the hubs receive")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--ivr-calls", type=int, default=24, help="concurrent sipp calls into the IVR hosts")
    ap.add_argument("--workers", type=int, default=4, help="IVR workers per IVR host")
    ap.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--skip-ivr", action="store_true")
    ap.add_argument("--skip-hubs", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "multi_host.json")
    args = ap.parse_args()
    why = netns_unavailable() or next((f"{b} is not installed" for b in ("redis-server", "kamailio", "sipp")
                                       if shutil.which(b) is None), None)
    if why:
        sys.exit(f"cannot run: {why}")
    hub_rows, ivr_rows = [], []
    with tempfile.TemporaryDirectory(prefix="multi-host-") as tmp, Hosts(HOSTS) as hosts:
        site = Site(hosts, Path(tmp))
        try:
            for n in [] if args.skip_hubs else args.hosts:
                hub_rows.append(run_hubs(site, n, args.calls, args.seconds))
                print(json.dumps(hub_rows[-1]), flush=True)
            if not args.skip_ivr:
                for n in args.hosts:
                    ivr_rows.append(run_ivr(site, n, args.ivr_calls, args.workers))
                    print(json.dumps(ivr_rows[-1]), flush=True)
        finally:
            site.close()
    print(f"\n{'hubs':>4} {'events/s':>9} {'seen':>6} {'hubs CPU %/100 ev/s':>20} {'deciding':>9} {'others':>7} "
          f"{'Redis':>6} {'PostgreSQL':>11} {'p50 ms':>7} {'p95 ms':>7}")
    for r in hub_rows:
        print(f"{r['hubs']:>4} {r['events_per_s']:>9} {r['events_seen']:>6} {r['hubs_cpu_per_100_eps']:>20} "
              f"{r['deciding_hub_cpu_per_100_eps']:>9} {r['other_hubs_cpu_per_100_eps']:>7} "
              f"{r['redis_cpu_per_100_eps']:>6} {r['postgres_cpu_per_100_eps']:>11} {r['p50_ms']:>7} {r['p95_ms']:>7}")
    if ivr_rows:
        print(f"\n{'IVR hosts':>9} {'calls':>6} {'answered':>9} {'worker CPU %':>13} {'% per call':>11} "
              f"{'calls per 2-core host at 70 %':>30}")
        for r in ivr_rows:
            print(f"{r['ivr_hosts']:>9} {r['calls']:>6} {r['successful']:>9} {r['worker_cpu_pct']:>13} "
                  f"{r['worker_cpu_pct_per_call']:>11} {r['calls_per_2_core_host_at_70pct']!s:>30}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cores": os.cpu_count(), "hubs": hub_rows, "ivr": ivr_rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
