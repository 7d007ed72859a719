"""Helpers for tests with real SIP peers on loopback: free ports, Kamailio and sipp processes, raw SIP.

Every process started here runs in its own session and is killed (its process group) by ``stop()``;
use the objects as context managers or stop them in a fixture's teardown.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sip_config import kamailio
from sip_config.models import SipSettings

SIPP_DIR = Path(__file__).parent / "sipp"
SIPP_PCAPS = Path("/usr/share/sip-tester")
LOOPBACK = "127.0.0.1"

requires_kamailio = pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed")
requires_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) not installed")


# ---------------------------------------------------------------- ports


def _free(port: int, host: str = LOOPBACK, tcp: bool = True) -> bool:
    kinds = [socket.SOCK_DGRAM] + ([socket.SOCK_STREAM] if tcp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _xdist_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(worker) % 2 if worker.isdigit() else 0


def _port_range() -> range:
    """Where this test process picks ports: below the kernel's ephemeral range (32768–60999), so no
    outgoing connection's source port takes a port between its pick and its use, and one slice per
    pytest-xdist worker, so two test processes never pick the same port."""
    start = 10000 + _xdist_index() * 5000
    return range(start, start + 5000)


_handed: set[int] = set()


def _pick(ports: range, fits) -> int:
    """A random port of ``ports`` that ``fits`` and that this process has not handed out before
    (a port handed out may not be bound yet)."""
    for _ in range(400):
        port = random.choice(ports)
        if port not in _handed and fits(port):
            _handed.add(port)
            return port
    raise RuntimeError(f"no free port in {ports}")


def free_udp_port(host: str = LOOPBACK, tcp: bool = True) -> int:
    """A port free for UDP (and TCP, unless ``tcp=False``) on ``host``."""
    return _pick(_port_range(), lambda port: _free(port, host, tcp))


def _free_block(candidates: range, count: int, host: str, tcp: bool) -> int:
    """First of ``count`` consecutive ports free (and not handed out), at one of ``candidates``."""
    base = _pick(candidates, lambda b: all(b + i not in _handed and _free(b + i, host, tcp) for i in range(count)))
    _handed.update(range(base, base + count))
    return base


def free_port_block(count: int, host: str = LOOPBACK, tcp: bool = True) -> int:
    """First of ``count`` consecutive free ports (e.g. worker_base_port for ``count`` workers)."""
    ports = _port_range()
    return _free_block(range(ports.start, ports.stop - count), count, host, tcp)


def free_rtp_base(count: int, host: str = LOOPBACK) -> int:
    """First of ``count`` free UDP ports for media (RTP/RTCP pairs), on an even port of 20000–31999 (one
    slice per pytest-xdist worker)."""
    start = 20000 + _xdist_index() * 6000
    return _free_block(range(start, start + 6000 - count, 2), count, host, tcp=False)


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    """A child process in its own session, output to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    cwd: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        try:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 3.0) -> int | None:
        """SIGTERM the process group, SIGKILL what is left after ``timeout``; returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        # children that outlived the leader (kamailio's workers) go with the group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Kamailio(Proc):
    sip: SipSettings | None = None
    cfg: Path | None = None

    def rpc(self, *args: str, timeout: float = 5.0) -> str:
        """Run a kamcmd RPC command over the ctl socket in the run dir (e.g. ``dispatcher.list``)."""
        ctl = kamailio.control_socket(self.cwd)
        if ctl is None or shutil.which("kamcmd") is None:
            raise RuntimeError("no kamcmd or no control socket")
        out = subprocess.run(
            ["kamcmd", "-s", f"unixs:{ctl}", *args], capture_output=True, text=True, timeout=timeout
        )
        return out.stdout + out.stderr

    def destinations(self) -> dict[str, str]:
        """dispatcher.list as ``{uri: flags}``, flags like ``AP`` (active, probing) or ``IP`` (inactive)."""
        out = self.rpc("dispatcher.list")
        return dict(re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", out))

    def wait_destination(self, port: int, state: str, timeout: float = 10.0) -> float:
        """Wait until the worker on ``port`` has flags starting with ``state`` ("A"/"I"); return seconds."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            for uri, flags in self.destinations().items():
                if f":{port};" in uri + ";" and flags.startswith(state):
                    return time.monotonic() - t0
            time.sleep(0.1)
        raise TimeoutError(f"worker :{port} not {state} after {timeout}s: {self.destinations()}")


def start_kamailio(
    sip: SipSettings, run_dir: Path, *, ready_timeout: float = 10.0, **render_kwargs: object
) -> Kamailio:
    """Render the config into ``run_dir``, start Kamailio in the foreground and wait for it to answer.

    If its SIP port was taken between the pick and Kamailio's bind (seen in CI), it is started again on
    a fresh port; the returned process's ``sip`` holds the settings it runs with."""
    for _ in range(3):
        try:
            return _start_kamailio_once(sip, Path(run_dir), ready_timeout, render_kwargs)
        except PortTaken:
            sip = sip.model_copy(update={"port": free_udp_port(sip.host)})
    raise RuntimeError("kamailio: three SIP ports in a row were taken")


class PortTaken(RuntimeError):
    """Kamailio could not bind its SIP port."""


def _start_kamailio_once(sip: SipSettings, run_dir: Path, ready_timeout: float, render_kwargs: dict) -> Kamailio:
    cfg = kamailio.render(sip, run_dir, **render_kwargs)  # type: ignore[arg-type]
    errors = kamailio.check(cfg)
    if errors:
        raise RuntimeError("kamailio -c: " + "\n".join(errors))
    log_path = run_dir / "kamailio.log"
    seen = log_path.stat().st_size if log_path.exists() else 0  # an earlier attempt's lines stay above
    proc = Kamailio(
        name="kamailio",
        argv=kamailio.command(sip, cfg, run_dir),
        log_path=log_path,
        cwd=run_dir.resolve(),
        sip=sip,
        cfg=cfg,
    ).start()
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            log = proc.log()[seen:]
            kind = PortTaken if f":{sip.port}" in log and "Address already in use" in log else RuntimeError
            raise kind(f"kamailio exited with {proc.popen.returncode}:\n{log[-3000:]}")
        if sip_request((sip.host, sip.port), options_request(sip.host, sip.port), timeout=0.3):
            return proc
    proc.stop()
    raise RuntimeError(f"kamailio did not answer within {ready_timeout}s:\n{proc.log()[-3000:]}")


def sipp_argv(args: list[str], timeout: float | None = None) -> list[str]:
    argv = ["sipp", *args]
    if "-nostdin" not in argv:
        argv.append("-nostdin")
    if timeout is not None and "-timeout" not in argv:
        argv += ["-timeout", f"{max(1, int(timeout) - 1)}s"]
    return argv


def start_sipp(args: list[str], log_path: Path, cwd: Path | None = None, name: str = "sipp") -> Proc:
    """Start a long-running sipp (e.g. a UAS worker) in the background."""
    cwd = Path(cwd or log_path.parent)
    return Proc(name=name, argv=sipp_argv(args), log_path=log_path, cwd=cwd).start()


def run_sipp(args: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run sipp to completion (killed after ``timeout`` s); exit code 0 = every call succeeded."""
    argv = sipp_argv(args, timeout)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


def link_pcaps(cwd: Path) -> None:
    """sipp scenarios here play ``pcap/...`` relative to the working directory: point it at sip-tester's."""
    link = Path(cwd) / "pcap"
    if not link.exists():
        link.symlink_to(SIPP_PCAPS)


@dataclass
class Worker:
    """A sipp stand-in IVR worker (tests/sipp/uas_worker.xml) on ``port``."""

    port: int
    run_dir: Path
    host: str = LOOPBACK
    proc: Proc | None = None
    messages: Path = field(init=False)

    def __post_init__(self) -> None:
        self.messages = self.run_dir / f"worker_{self.port}_messages.log"

    def start(self, wait: bool = True) -> Worker:
        self.proc = start_sipp(
            [
                "-sf", str(SIPP_DIR / "uas_worker.xml"),
                "-i", self.host, "-p", str(self.port), "-bind_local",
                "-mp", str(free_udp_port(self.host, tcp=False)),
                "-trace_msg", "-message_file", str(self.messages), "-message_overwrite", "false",
            ],
            self.run_dir / f"worker_{self.port}.out",
            name=f"worker:{self.port}",
        )  # fmt: skip
        if wait:
            deadline = time.monotonic() + 5
            while not sip_request((self.host, self.port), options_request(self.host, self.port), timeout=0.2):
                if time.monotonic() > deadline or not self.proc.alive():
                    raise RuntimeError(
                        f"sipp worker on {self.port} not answering:\n{self.proc.log()[-2000:]}"
                    )
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def received(self, method: str) -> int:
        """How many ``method`` requests this worker received (retransmissions included)."""
        return sum(1 for direction, line in sipp_messages(self.messages) if direction == "received"
                   and line.startswith(method + " "))  # fmt: skip


# ---------------------------------------------------------------- sipp message traces


def sipp_messages(path: Path) -> list[tuple[str, str]]:
    """(``sent``/``received``, first line) for each message of a sipp ``-trace_msg`` file."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for m in re.finditer(r"message (sent|received)[^\n]*\n\s*\n([^\r\n]+)", text):
        out.append((m.group(1), m.group(2).strip()))
    return out


def received_statuses(path: Path) -> list[int]:
    """Status codes of the responses received, in order, from a sipp ``-trace_msg`` file."""
    codes = []
    for direction, line in sipp_messages(path):
        m = re.match(r"SIP/2\.0 (\d{3})", line)
        if direction == "received" and m:
            codes.append(int(m.group(1)))
    return codes


def sipp_call(
    proxy: tuple[str, int],
    run_dir: Path,
    *,
    calls: int = 1,
    rate: float = 10,
    limit: int | None = None,
    duration_ms: int = 200,
    local_ip: str = LOOPBACK,
    transport: str = "u1",
    scenario: str = "uac_call.xml",
    extra: list[str] | None = None,
    timeout: float = 20,
    name: str | None = None,
) -> tuple[subprocess.CompletedProcess, list[int]]:
    """Place ``calls`` calls through the proxy with a sipp UAC; returns (completed process, statuses)."""
    name = name or f"uac_{uuid.uuid4().hex[:8]}"
    messages = Path(run_dir) / f"{name}_messages.log"
    args = [
        "-sf", str(SIPP_DIR / scenario), "-s", "12368", f"{proxy[0]}:{proxy[1]}",
        "-i", local_ip, "-bind_local", "-p", str(free_udp_port(local_ip)), "-t", transport,
        "-mp", str(free_udp_port(local_ip, tcp=False)),
        "-m", str(calls), "-r", str(rate), "-l", str(limit or calls), "-d", str(duration_ms),
        "-recv_timeout", "10000", "-default_behaviors", "all,-bye",
        "-trace_msg", "-message_file", str(messages),
    ]  # fmt: skip
    proc = run_sipp(args + (extra or []), timeout=timeout, cwd=run_dir)
    return proc, received_statuses(messages)


# ---------------------------------------------------------------- raw SIP over UDP


def options_request(
    host: str, port: int, src: str = LOOPBACK, src_port: int = 5999, extra: str = ""
) -> bytes:
    tag = uuid.uuid4().hex[:8]
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {src}:{src_port};rport;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:probe@{src}>;tag={tag}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{src}\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Max-Forwards: 70\r\n{extra}"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def invite_request(host: str, port: int, src: str = LOOPBACK, src_port: int = 5999, cseq: str = "1 INVITE",
                   max_forwards: str = "70") -> bytes:  # fmt: skip
    return (
        f"INVITE sip:12368@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {src}:{src_port};rport;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:raw@{src}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:12368@{host}:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{src}\r\n"
        f"CSeq: {cseq}\r\n"
        f"Contact: <sip:raw@{src}:{src_port}>\r\n"
        f"Max-Forwards: {max_forwards}\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def sip_request(
    dest: tuple[str, int], data: bytes, src: tuple[str, int] = (LOOPBACK, 0), timeout: float = 1.0
) -> list[str]:
    """Send one datagram; return the status lines received until a final reply or ``timeout`` (silence)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(src)
        s.settimeout(timeout)
        s.sendto(data, dest)
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                reply = s.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                break
            line = reply.split(b"\r\n", 1)[0].decode(errors="replace")
            lines.append(line)
            m = re.match(r"SIP/2\.0 (\d{3})", line)
            if m and int(m.group(1)) >= 200:
                break
        return lines


def status_codes(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for ln in lines if (m := re.match(r"SIP/2\.0 (\d{3})", ln))]
