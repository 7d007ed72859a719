"""Run the real hotline (`hotline serve`) in a temporary home for integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.sipsupport import Proc, free_port_block, free_rtp_base, free_udp_port

HOTLINE = [sys.executable, "-m", "hotline"]


def sip_ping(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> int | None:
    """Send SIP OPTIONS over UDP; the status code of the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.settimeout(timeout)
        lport = s.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{lport};branch={branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:ping@{host}>;tag={uuid.uuid4().hex[:8]}\r\n"
               f"To: <sip:{host}:{port}>\r\nCall-ID: {uuid.uuid4().hex}@{host}\r\nCSeq: 1 OPTIONS\r\n"
               f"Content-Length: 0\r\n\r\n")
        s.sendto(msg.encode(), (host, port))
        try:
            data = s.recv(65535).decode(errors="replace")
        except OSError:
            return None
    try:
        return int(data.split(" ", 2)[1])
    except (IndexError, ValueError):
        return None


#: The test's caller stands for a phone on another device: as root it runs at a higher priority than the hotline, so
#: the hotline's decodes on this 2-core machine do not starve it. Starved, it sent its RTP with gaps (6, up to 76 ms,
#: in a reply whisper then heard as "我要调一个" for "我要第二个": CI stop 20 and a fresh clone under load).
CALLER_NICE = -5


def _run_caller(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if os.geteuid() == 0:  # before pjsua2 starts its threads (they inherit it)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, CALLER_NICE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


class _EnvProc(Proc):
    def __init__(self, name: str, argv: list[str], log_path: Path, cwd: Path, env: dict[str, str]):
        super().__init__(name, argv, log_path, cwd)
        self.env = env

    def start(self) -> _EnvProc:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


@dataclass
class Hotline:
    home: Path
    workers: int = 2
    single: bool = False
    menu: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    sip_port: int = 0
    hub_port: int = 0
    worker_base: int = 0
    rtp_base: int = 0
    speech_port: int = 0
    roles: str | None = None  # `hotline serve --roles` (None: all, as by default)
    config: Path | None = None  # a settings file (the environment above still wins over it)
    proc: Proc | None = None

    def __post_init__(self) -> None:
        self.sip_port = self.sip_port or free_udp_port()
        self.hub_port = self.hub_port or free_udp_port()
        self.speech_port = self.speech_port or free_udp_port()
        self.worker_base = self.worker_base or free_port_block(self.workers)
        self.rtp_base = self.rtp_base or free_rtp_base(self.workers * 40)  # sip.rtp_ports_per_worker

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "HOTLINE_HOME": str(self.home),
            "HOTLINE_SIP__PORT": str(self.sip_port),
            "HOTLINE_SIP__WORKERS": str(self.workers),
            "HOTLINE_SIP__WORKER_BASE_PORT": str(self.worker_base),
            "HOTLINE_SIP__RTP_PORT_START": str(self.rtp_base),
            "HOTLINE_HUB__PORT": str(self.hub_port),
            "HOTLINE_HUB__COOKIE_SECURE": "false",
            # every `hotline dial` caller has the same caller ID: the front door's per-caller limit stays off here
            "HOTLINE_SIP__MAX_CALLS_PER_CALLER": "0",
            "HOTLINE_IVR__DRAIN_TIMEOUT_S": "3",
            "HOTLINE_IVR__MENU_RELOAD_INTERVAL_S": "0.5",
            "HOTLINE_SPEECH__ENABLED": "false",  # tests that need it turn it on (it loads whisper)
            "HOTLINE_SPEECH__PORT": str(self.speech_port),
            "HOTLINE_CASES__LOAD_DEMO": "true",  # the bundled demo cases (public 查询密码), off by default
        })
        if self.menu:
            env["HOTLINE_IVR__MENU_FILE"] = str(self.menu)
        env.update(self.extra_env)
        env.pop("HOTLINE_CONFIG", None)
        if self.config:
            env["HOTLINE_CONFIG"] = str(self.config)
        return env

    def has(self, role: str) -> bool:
        return self.roles is None or role in self.roles.split(",")

    @property
    def worker_ports(self) -> list[int]:
        return [self.sip_port] if self.single else [self.worker_base + i for i in range(self.workers)]

    @property
    def uri(self) -> str:
        return f"sip:12368@127.0.0.1:{self.sip_port}"

    def start(self, timeout: float = 40.0) -> Hotline:
        args = ["serve"] + (["--single", "--sip-port", str(self.sip_port)] if self.single else [])
        args += ["--roles", self.roles] if self.roles else []
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = _EnvProc("hotline", HOTLINE + args, self.home / "serve.log", Path.cwd(), self.env).start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        ports = (self.worker_ports if self.has("ivr") else []) + \
            ([self.sip_port] if self.has("front") and not self.single else [])
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"hotline exited early:\n{self.proc.log()[-4000:]}")
            try:
                hub_ok = not self.has("hub") or \
                    httpx.get(f"http://127.0.0.1:{self.hub_port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                hub_ok = False
            if hub_ok and all(sip_ping(p) == 200 for p in ports):
                return
            time.sleep(0.3)
        raise RuntimeError(f"hotline not ready in {timeout} s:\n{self.proc.log()[-4000:]}")

    def stop(self, timeout: float = 30.0) -> int | None:
        return self.proc.stop(timeout) if self.proc else None

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(HOTLINE + list(args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def dial(self, *args: str, uri: str | None = None, timeout: float = 90.0) -> dict:
        frames = self.home / f"frames-{uuid.uuid4().hex[:6]}.json"
        rtp = str(40000 + (os.getpid() % 50) * 200 + int(uuid.uuid4().int % 40) * 4)
        r = _run_caller(HOTLINE + ["dial", uri or self.uri, "--frames-json", str(frames), "--rtp-port", rtp, *args],
                        self.env, timeout)
        assert r.stdout.strip(), f"hotline dial printed nothing: {r.stderr[-2000:]}"
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["frames"] = json.loads(frames.read_text()) if frames.exists() else []
        return out

    def dial_many(self, calls: dict[str, tuple[str, ...]], stagger_s: float = 4.0,
                  timeout: float = 120.0) -> dict[str, dict]:
        """Place several `hotline dial` calls at once (the i-th ``stagger_s`` × i seconds after the first), so a
        test module's calls share the wall clock; returns each one's summary by name. Real callers overlap
        too: a worker serves them side by side."""
        def one(i: int, args: tuple[str, ...]) -> dict:
            time.sleep(i * stagger_s)
            return self.dial(*args, timeout=timeout)

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = {name: pool.submit(one, i, args) for i, (name, args) in enumerate(calls.items())}
            return {name: f.result() for name, f in futures.items()}

    def ended_call(self, out: dict, timeout: float = 40.0) -> dict:
        """The call record of the call `dial` placed (found by its SIP Call-ID), once it has ended."""
        sip_id = out.get("sip_call_id")
        assert sip_id, f"the call did not connect: {out}"
        calls = self.wait_calls(lambda c: any(x["sip_call_id"] == sip_id and x["status"] == "ended" for x in c),
                                timeout)
        return next(x for x in calls if x["sip_call_id"] == sip_id)

    def calls(self, limit: int = 100) -> list[dict]:
        r = self.cli("calls", "list", "--json", "--limit", str(limit))
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def wait_calls(self, predicate, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        calls: list[dict] = []
        while time.monotonic() < deadline:
            calls = self.calls()
            if predicate(calls):
                return calls
            time.sleep(0.3)
        raise AssertionError(f"call records never matched; last: {json.dumps(calls, ensure_ascii=False)[:3000]}")


def pid_of(h: Hotline, pattern: str) -> int | None:
    """The pid of this hotline's process whose command line matches ``pattern`` (same HOTLINE_HOME), or None."""
    out = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
    for pid in (int(p) for p in out.stdout.split()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"HOTLINE_HOME={h.home}".encode() in environ:
            return pid
    return None
