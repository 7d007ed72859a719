"""Hosts for the multi-host tests and benchmark (issue 17): Linux network namespaces joined by one bridge, each with
its own private address, all made (and removed) by the test itself.

``Hosts(["a", "b"])`` makes a namespace per host plus one holding the bridge (``10.<x>.<y>.0/24``, host i at .i+1;
each namespace's loopback is up too). ``hosts.run("b", argv)`` starts a process on host b (``ip netns exec``);
``with hosts.inside("d"):`` moves this thread there (``setns``), so sockets it opens and processes it starts belong
to host d, for helpers that start their own processes (Redis, PostgreSQL, Chromium). ``hosts.kill("b")`` SIGKILLs
every process of host b. Needs root and iproute2; :func:`netns_unavailable` says why not, for a skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"hprobe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", name)
    except RuntimeError as e:
        return f"cannot make a network namespace: {e}"
    with contextlib.suppress(RuntimeError):
        _ip("netns", "del", name)
    return None


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Hosts:
    def __init__(self, names: list[str]):
        tag = secrets.token_hex(2)
        self.names = list(names)
        self.ns = {n: f"h{n[:4]}{tag}" for n in names}
        self.switch = f"hsw{tag}"
        net = secrets.randbelow(200) + 20
        self.prefix = f"10.{net}.{secrets.randbelow(250)}"
        self.addr = {n: f"{self.prefix}.{i + 1}" for i, n in enumerate(names)}
        self._tag = tag

    def __enter__(self) -> Hosts:
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for i, n in enumerate(self.names):
                ns, here, there = self.ns[n], f"eth{i}", f"p{i}{self._tag}"
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("link", "add", here, "netns", ns, "type", "veth", "peer", "name", there, "netns", self.switch)
                _ip("-n", ns, "addr", "add", f"{self.addr[n]}/24", "dev", here)
                _ip("-n", ns, "link", "set", here, "up")
                _ip("-n", self.switch, "link", "set", there, "master", "br0")
                _ip("-n", self.switch, "link", "set", there, "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for n in self.names:
            self.kill(n)
        for ns in [*self.ns.values(), self.switch]:
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", ns)

    def pids(self, name: str) -> list[int]:
        r = subprocess.run(["ip", "netns", "pids", self.ns[name]], capture_output=True, text=True, timeout=10)
        return [int(p) for p in r.stdout.split()]

    def kill(self, name: str) -> int:
        """SIGKILL every process of host ``name`` (as a power cut would); returns how many."""
        pids = self.pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def argv(self, name: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[name], *argv]

    def run(self, name: str, argv: list[str], *, log: Path, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.Popen:
        """Start ``argv`` on host ``name`` in a session of its own, output to ``log``."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            return subprocess.Popen(self.argv(name, argv), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)

    def http_ok(self, name: str, url: str) -> bool:
        """Does ``url``/healthz answer 200 when asked from host ``name``?"""
        import httpx

        with self.inside(name):
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

    @contextlib.contextmanager
    def inside(self, name: str) -> Iterator[None]:
        """Move this thread into host ``name``'s network namespace for the block."""
        home = f"/proc/self/task/{threading.get_native_id()}/ns/net"
        fd = os.open(home, os.O_RDONLY)
        try:
            _setns(f"/run/netns/{self.ns[name]}")
            try:
                yield
            finally:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(fd)
