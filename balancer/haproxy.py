"""HAProxy in front of the hubs: ``render()`` writes ``haproxy.cfg`` into a run directory, ``check()`` asks
HAProxy to parse it, ``command()`` gives the argv to run it in the foreground, ``server_states()`` reads which
hubs it takes as up (its stats socket).

Any hub serves any browser and any worker: their state is shared through Redis (``redis.url``), so balancing is
by least connections, without stickiness. A hub that fails two health checks is taken out and its websockets
are closed, so the browsers reconnect at once to another hub and resume from their seq.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import jinja2

from balancer.settings import BalancerSettings

CFG_NAME = "haproxy.cfg"
STATS_NAME = "haproxy.sock"
TEMPLATES = Path(__file__).parent / "templates"


class HaproxyError(RuntimeError):
    pass


def _address(host: str, port: int | str) -> str:
    """HAProxy reads the last colon as the port's, IPv6 addresses included (no brackets)."""
    return f"{host}:{port}"


def render(settings: BalancerSettings, run_dir: Path) -> Path:
    """Write ``haproxy.cfg`` for ``settings.hubs`` into ``run_dir``; its path."""
    if not settings.hubs:
        raise HaproxyError("balancer.hubs is empty: name the hubs (host:port) HAProxy balances")
    if settings.hubs_tls and settings.hubs_ca_file is None:
        raise HaproxyError("balancer.hubs_tls needs balancer.hubs_ca_file (the hubs' certificate or CA, PEM)")
    run_dir.mkdir(parents=True, exist_ok=True)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    text = env.get_template("haproxy.cfg.j2").render(
        stats_socket=(run_dir / STATS_NAME).resolve(), bind=_address(settings.host, settings.port),
        check_ms=settings.check_interval_ms, tls=settings.hubs_tls,
        ca_file=settings.hubs_ca_file.resolve() if settings.hubs_ca_file else None,
        servers=[(f"hub{i + 1}", hub, "") for i, hub in enumerate(settings.hubs)]
        + [(f"backup{i + 1}", hub, " backup") for i, hub in enumerate(settings.backup_hubs)])
    cfg = run_dir / CFG_NAME
    cfg.write_text(text, encoding="utf-8")
    return cfg


def command(settings: BalancerSettings, cfg: Path) -> list[str]:
    """Foreground (-db), so the supervisor owns the process."""
    return [settings.binary, "-db", "-f", str(cfg)]


def check(settings: BalancerSettings, cfg: Path) -> list[str]:
    """HAProxy's complaints about ``cfg`` (empty: valid)."""
    binary = shutil.which(settings.binary)
    if binary is None:
        return [f"{settings.binary!r} not found (apt-get install haproxy)"]
    done = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    if done.returncode == 0:
        return []
    return [line for line in (done.stdout + done.stderr).splitlines() if "ALERT" in line or "rror" in line] or [
        done.stderr.strip() or f"haproxy -c exited {done.returncode}"]


def server_states(run_dir: Path, timeout: float = 2.0) -> dict[str, str]:
    """``{"hub1": "UP", "backup1": "DOWN", ...}`` from the running HAProxy's stats socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(run_dir / STATS_NAME))
        s.sendall(b"show stat\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    states = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == "hubs" and row.get("svname", "").startswith(("hub", "backup")):
            states[row["svname"]] = row.get("status", "")
    return states
