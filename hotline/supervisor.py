"""`hotline serve`: starts the hub, N IVR workers and Kamailio, restarts what dies, drains on SIGTERM.

``--roles`` runs a subset on this host (front = Kamailio, hub, ivr = the workers, speech = the speech service);
the settings name the others (``hub.url``, ``speech.url``, ``sip.remote_workers``). SIGHUP re-reads the settings
file and reloads Kamailio's list of workers (``sip.remote_workers``) without a restart.

Children run as separate processes (a pjsua assertion or segfault takes down one worker's calls
only). When a worker dies the supervisor delivers what is left in its event spool, tells the hub
that the worker was lost (its open call records are closed with cause ``worker_lost``), and starts
it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog

from balancer import haproxy
from hotline.hub_tls import ensure_certificate
from hotline.service_user import ServiceUserError, drop_privileges
from hotline.settings import Settings, SettingsError, load_settings
from ivr.contract import EventBatch, WorkerLost
from ivr.publisher import deliver_spool
from ivr.settings import STOP_GRACE_S
from sip_config import kamailio

log = structlog.get_logger(__name__)

ROLES = ("front", "hub", "ivr", "speech")
RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0)
HUB_START_TIMEOUT_S = 30.0


#: glibc's malloc arenas per process (default 8 × cores): each thread that allocates may open a 64 MB arena and
#: keep it, so a busy multi-threaded process steps up in RSS and stays there (the 1-hour soak: the speech service
#: +63.6 MB at once at minute 52, +15 % in all); 2 arenas did not slow a whisper decode (281-291 vs 284-287 ms p50).
MALLOC_ARENAS = "2"


def child_env(parent: dict[str, str]) -> dict[str, str]:
    """A child's environment: the parent's, unbuffered output, and MALLOC_ARENA_MAX unless the parent sets it."""
    env = dict(parent, PYTHONUNBUFFERED="1")
    env.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
    return env


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    argv: list[str]
    kind: str  # hub | worker | kamailio | haproxy | speech
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    watcher: asyncio.Task | None = field(default=None, repr=False)


def parse_roles(text: str) -> frozenset[str]:
    """``front,hub,ivr,speech`` (any subset, any order) -> the set; ValueError naming what is not a role."""
    roles = {r.strip() for r in text.split(",") if r.strip()}
    wrong = sorted(roles - set(ROLES))
    if wrong or not roles:
        raise ValueError(f"{', '.join(wrong) or 'nothing'}: roles are {', '.join(ROLES)} (comma-separated)")
    return frozenset(roles)


class Supervisor:
    def __init__(self, settings: Settings, single_port: int | None = None, config: Path | None = None,
                 roles: frozenset[str] | None = None):
        self.s = settings
        self.single_port = single_port
        self.config = config
        self.roles = roles if roles is not None else frozenset(ROLES)
        self.explicit_roles = roles is not None
        self.stopping = False
        self.children: dict[str, Child] = {}
        self.run_dir = settings.path("run")
        self._stopped = asyncio.Event()

    def _hotline(self, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "hotline", *args]
        if self.config:
            argv += ["--config", str(self.config)]
        return argv

    def _local_workers(self) -> list[str]:
        return [self.s.sip.worker_name(i) for i in range(self.s.sip.workers)] if "ivr" in self.roles else []

    def plan(self) -> list[Child]:
        kids = [Child("hub", self._hotline("hub"), "hub")] if "hub" in self.roles else []
        if self.single_port is not None:
            kids.append(Child(self.s.sip.worker_name(0), self._hotline(
                "worker", "--index", "0", "--single-port", str(self.single_port)), "worker"))
            return kids + self._speech()
        for i, name in enumerate(self._local_workers()):
            kids.append(Child(name, self._hotline("worker", "--index", str(i)), "worker"))
        kids += self._speech()
        if "front" in self.roles:
            cfg = kamailio.render(self.s.sip, self.run_dir, self._local_workers())
            kids.append(Child("kamailio", kamailio.command(self.s.sip, cfg, self.run_dir), "kamailio"))
            if self.s.balancer.hubs:  # several hubs: HAProxy in front of them (their address is hub.url)
                lb = haproxy.render(self.s.balancer, self.run_dir)
                kids.append(Child("haproxy", haproxy.command(self.s.balancer, lb), "haproxy"))
        return kids

    def reload(self) -> None:
        """SIGHUP: read the settings file again; Kamailio takes the new list of workers without a restart."""
        if "front" not in self.roles or self.single_port is not None:
            log.info("reload_ignored", reason="no front door on this host")
            return
        try:  # only the list is taken: the rest of the running settings (ports, transports) stays as started
            remote = load_settings(self.config).sip.remote_workers
            sip = self.s.sip.model_copy(update={"remote_workers": remote})
            answer = kamailio.reload_dispatcher(sip, self.run_dir, self._local_workers())
        except (SettingsError, ValueError, kamailio.KamailioError) as e:
            log.error("reload_failed", error=str(e))  # the running list stays
            return
        self.s = self.s.model_copy(update={"sip": sip})
        log.info("dispatcher_reloaded", remote_workers=remote, kamcmd=answer[:200])

    def _speech(self) -> list[Child]:
        """The speech service, when enabled and its model is installed (else menu 2 hands off). With the default
        roles a speech.url names a service elsewhere and none is started here; ``--roles ...,speech`` starts it."""
        if "speech" not in self.roles or not self.s.speech.enabled or (self.s.speech.url and not self.explicit_roles):
            return []
        from asr.errors import ModelError
        from asr.models import verify_model_dir

        if self.s.asr.engine == "whisper":
            try:
                verify_model_dir(self.s.asr.whisper_dir(self.s.home), full=False)
            except ModelError as e:
                log.warning("speech_service_not_started", reason=str(e))
                return []
        return [Child("speech", self._hotline("speech"), "speech")]

    async def _spawn(self, child: Child) -> None:
        env = child_env(dict(os.environ))
        # own session: a terminal's Ctrl-C reaches only the supervisor, which drains in order;
        # parent-death signal: a supervisor killed with SIGKILL takes its children with it
        child.proc = await asyncio.create_subprocess_exec(*child.argv, env=env, start_new_session=True,
                                                          preexec_fn=_die_with_parent)
        child.started_at = time.monotonic()
        log.info("child_started", child=child.name, pid=child.proc.pid)

    async def _wait_hub(self) -> None:
        deadline = time.monotonic() + HUB_START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                hub = self.children["hub"].proc
                if hub is None or hub.returncode is not None:
                    raise RuntimeError("the hub exited during start-up (see its log above)")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.s.hub.url}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"the hub did not answer {self.s.hub.url}/healthz within {HUB_START_TIMEOUT_S:.0f} s")

    async def _watch(self, child: Child) -> None:
        while True:
            code = await child.proc.wait()
            if self.stopping:
                return
            log.error("child_exited", child=child.name, code=code, pid=child.proc.pid)
            if child.kind == "worker":
                await asyncio.to_thread(self._worker_lost, child.name, f"exit code {code}")
            alive_s = time.monotonic() - child.started_at
            if alive_s > 30:
                child.restarts = 0
            delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
            child.restarts += 1
            await asyncio.sleep(delay)
            if self.stopping:
                return
            await self._spawn(child)

    def _worker_lost(self, name: str, detail: str) -> None:
        token = self.s.secret("worker_token")
        try:
            deliver_spool(self.s.path("spool"), name, self.s.hub.url, token)
            batch = EventBatch(events=[WorkerLost(worker=name, detail=detail)])
            r = httpx.post(f"{self.s.hub.url}/internal/events", content=batch.model_dump_json(),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                           timeout=5.0)
            r.raise_for_status()
            log.info("worker_lost_reported", worker=name)
        except Exception as e:  # the hub is down too: the restarted worker resends its spool
            log.error("worker_lost_not_reported", worker=name, error=str(e))

    def request_stop(self) -> None:
        if not self.stopping:
            log.info("supervisor_stopping")
            self.stopping = True
            self._stopped.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        try:
            for child in self.plan():
                self.children[child.name] = child
        except ValueError as e:  # e.g. a front door with no worker to send calls to
            log.error("start_failed", error=str(e))
            return 1
        try:
            if "hub" in self.children:
                await self._spawn(self.children["hub"])
                await self._wait_hub()
            for child in self.children.values():
                if child.proc is None:
                    await self._spawn(child)
            for child in self.children.values():
                child.watcher = loop.create_task(self._watch(child))
            log.info("hotline_up", roles=",".join(r for r in ROLES if r in self.roles),
                     workers=sum(c.kind == "worker" for c in self.children.values()),
                     sip_port=self.single_port or self.s.sip.port, hub=self.s.hub.url)
            await self._stopped.wait()
        except RuntimeError as e:
            log.error("start_failed", error=str(e))
            self.stopping = True
            await self._shutdown()
            return 1
        await self._shutdown()
        return 0

    async def _stop_kind(self, kind: str, timeout: float) -> None:
        procs = [c.proc for c in self.children.values() if c.kind == kind and c.proc and c.proc.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        if not procs:
            return
        _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=timeout)
        for p in procs:
            if p.returncode is None:
                log.warning("child_killed", pid=p.pid, kind=kind)
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()

    async def _shutdown(self) -> None:
        """Workers drain first (new calls refused), then the front door and speech, then the hub."""
        await self._stop_kind("worker", self.s.ivr.drain_timeout_s + STOP_GRACE_S)
        await self._stop_kind("kamailio", 5)
        await self._stop_kind("haproxy", 5)
        await self._stop_kind("speech", 5)
        await self._stop_kind("hub", 10)
        for c in self.children.values():
            if c.watcher:
                c.watcher.cancel()
        log.info("hotline_stopped")


def serve(settings: Settings, single_port: int | None = None, config: Path | None = None,
          roles: frozenset[str] | None = None) -> int:
    try:
        user = drop_privileges(settings.run_as, settings.home)
    except ServiceUserError as e:
        log.error("service_user_refused", error=str(e))
        print(f"hotline serve: {e}", file=sys.stderr)
        return 2
    if user:
        log.info("running_as", user=user, uid=os.getuid())
    # made once here, before the hub and workers start; they all trust exactly this certificate
    if settings.hub.tls and (roles is None or "hub" in roles):
        try:
            cert = ensure_certificate(settings.home, settings.hub.host, settings.hub.tls_cert, settings.hub.tls_key)
        except (OSError, ValueError) as e:
            print(f"hotline serve: hub HTTPS: {e}", file=sys.stderr)
            return 2
        os.environ["SSL_CERT_FILE"] = str(cert.cert)
    # Kamailio's certificate for SIP over TLS, made once like the hub's
    if settings.sip.tls and (roles is None or "front" in roles):
        sip = settings.sip
        try:
            pair = ensure_certificate(settings.home, sip.advertised_host or sip.host,
                                      Path(sip.tls_cert) if sip.tls_cert else None,
                                      Path(sip.tls_key) if sip.tls_key else None, name="sip")
        except (OSError, ValueError) as e:
            print(f"hotline serve: SIP TLS: {e}", file=sys.stderr)
            return 2
        log.info("sip_tls", port=sip.tls_port, cert=str(pair.cert), fingerprint=pair.fingerprint,
                 generated=pair.generated)
        print(f"SIP TLS on port {sip.tls_port}, certificate {pair.cert}, SHA-256 fingerprint {pair.fingerprint}",
              file=sys.stderr)
        settings = settings.model_copy(update={"sip": sip.model_copy(
            update={"tls_cert": str(pair.cert), "tls_key": str(pair.key)})})
    return asyncio.run(Supervisor(settings, single_port, config, roles).run())
