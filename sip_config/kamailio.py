"""Kamailio as the hotline's SIP front door, rendered from :class:`SipSettings`.

``render()`` writes ``kamailio.cfg`` and ``dispatcher.list`` into a run directory, ``command()`` gives the
argv to run Kamailio in the foreground with everything (pid file, control socket) inside that directory,
and ``check()`` asks Kamailio to parse the rendered configuration.

Worker ``i`` is ``sip:{worker_host}:{worker_base_port + i}`` with ``duid=w{i};maxload={max_calls_per_worker}``
in dispatcher set 1; initial INVITEs go to the least loaded worker (algorithm 10) and fail over to the next.
Workers on other hosts (``sip.remote_workers``, host:port) follow in the same set, probed with OPTIONS like the
local ones; ``reload_dispatcher()`` rewrites the list and reloads it in the running Kamailio.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import jinja2

from sip_config.models import SipSettings

CFG_NAME = "kamailio.cfg"
DISPATCHER_LIST_NAME = "dispatcher.list"
PID_NAME = "kamailio.pid"
CTL_NAME = "kamailio_ctl"
TLS_CFG_NAME = "tls.cfg"
DS_SETID = 1

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib64/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
    "/usr/local/lib/kamailio/modules",
)
# a unix socket path must fit sun_path (108 bytes with the trailing NUL)
_MAX_UNIX_SOCKET = 100
_DUID = re.compile(r"^[A-Za-z0-9_.-]+$")


class KamailioError(RuntimeError):
    pass


def _host_in_uri(host: str) -> str:
    """IPv6 literals go in brackets in URIs and listen sockets."""
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]"
    except ValueError:
        pass
    return host


@functools.lru_cache(maxsize=8)
def module_path(binary: str = "kamailio") -> str:
    """Directory holding Kamailio's modules: ``kamailio -I`` first, then the usual places."""
    exe = shutil.which(binary) or binary
    try:
        out = subprocess.run([exe, "-I"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if "paths to modules" in line:
            for candidate in line.split(":", 1)[1].strip().split(":"):
                if Path(candidate, "tm.so").is_file():
                    return candidate
    for candidate in DEFAULT_MODULE_DIRS:
        if Path(candidate, "tm.so").is_file():
            return candidate
    raise KamailioError(f"cannot find Kamailio's modules (tm.so); is {binary!r} installed?")


def _remote_duid(host_port: str) -> str:
    return "r-" + re.sub(r"[^A-Za-z0-9_.-]", "-", host_port.strip("[]"))


def dispatcher_list(sip: SipSettings, worker_ids: list[str] | None = None) -> str:
    """The dispatcher.list text: one destination per worker, call-load attributes. ``worker_ids``: this host's
    workers (default: ``sip.workers`` of them; [] when it runs none) and every one of ``sip.remote_workers``, one
    worker of each host in turn."""
    ids = worker_ids if worker_ids is not None else [sip.worker_name(i) for i in range(sip.workers)]
    if ids and len(ids) != sip.workers:
        raise ValueError(f"{len(ids)} worker ids for {sip.workers} workers")
    if len(set(ids)) != len(ids) or not all(_DUID.match(i) for i in ids):
        raise ValueError(f"worker ids must be unique tokens of [A-Za-z0-9_.-]: {ids!r}")
    if not ids and not sip.remote_workers:
        raise ValueError("no IVR worker to dispatch to: run the ivr role here or name sip.remote_workers")
    transport = "udp" if "udp" in sip.transports else "tcp"
    host = _host_in_uri(sip.worker_host)
    lines = [
        "# setid destination flags priority attributes",
        "# rendered by sip_config/kamailio.py - one line per IVR worker, the hosts in turn",
    ]
    by_host: dict[str, list[str]] = {}
    for i, duid in enumerate(ids):
        uri = f"sip:{host}:{sip.worker_port(i)};transport={transport}"
        by_host.setdefault("", []).append(f"{DS_SETID} {uri} 0 0 duid={duid};maxload={sip.max_calls_per_worker}")
    for hp in sip.remote_workers:
        by_host.setdefault(hp.rsplit(":", 1)[0], []).append(
            f"{DS_SETID} sip:{hp};transport={transport} 0 0 duid={_remote_duid(hp)};maxload={sip.max_calls_per_worker}")
    # hosts taken in turn (b0, c0, b1, c1): a call that failed over from a worker of a host that died goes to
    # another host next, so it waits for one INVITE timeout, not one per worker of the dead host
    for row in itertools.zip_longest(*by_host.values()):
        lines.extend(x for x in row if x is not None)
    return "\n".join(lines) + "\n"


def reload_dispatcher(sip: SipSettings, run_dir: Path, worker_ids: list[str] | None = None) -> str:
    """Rewrite ``dispatcher.list`` (workers that came or went) and have the running Kamailio read it again
    (``kamcmd dispatcher.reload``: calls in progress stay, new ones see the new list); kamcmd's answer.
    Raises KamailioError when it cannot be reached, ValueError when the list would be empty."""
    run_dir = Path(run_dir).resolve()
    text = dispatcher_list(sip, worker_ids)
    ctl = control_socket(run_dir)
    kamcmd = shutil.which("kamcmd")
    if ctl is None or kamcmd is None:
        raise KamailioError("cannot reload the dispatcher: " + ("no kamcmd (apt-get install kamailio)" if kamcmd
                            is None else f"the control socket path under {run_dir} is too long"))
    (run_dir / DISPATCHER_LIST_NAME).write_text(text)
    try:
        r = subprocess.run([kamcmd, "-s", f"unixs:{ctl}", "dispatcher.reload"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        raise KamailioError(f"kamcmd dispatcher.reload: {e}") from None
    if r.returncode != 0 or "error" in (r.stdout + r.stderr).lower():
        raise KamailioError(f"kamcmd dispatcher.reload: {(r.stdout + r.stderr).strip()[:300]}")
    return (r.stdout + r.stderr).strip()


def render(
    sip: SipSettings,
    run_dir: Path,
    worker_ids: list[str] | None = None,
    *,
    pike_density: int = 120,
    pike_interval_s: int = 2,
    ban_s: int = 60,
    invite_timeout_ms: int = 3000,
    transaction_timeout_ms: int = 4000,
    ring_timeout_ms: int = 60000,
    max_call_s: int = 3600,
    children: int = 4,
    log_level: int = 2,
    module_dir: str | None = None,
) -> Path:
    """Write ``kamailio.cfg`` and ``dispatcher.list`` into ``run_dir``; return the cfg path.

    ``pike_density`` initial requests per ``pike_interval_s`` seconds from one source address (not Kamailio
    itself, not a worker) is a flood: the address is dropped silently for ``ban_s`` seconds.
    ``invite_timeout_ms`` is how long a worker may stay silent before the INVITE fails over to the next
    one; ``transaction_timeout_ms`` applies to other transactions, including the OPTIONS probes.
    ``max_call_s`` is when the call load of a call whose BYE never came through is forgotten.
    """
    if pike_density < 1 or pike_interval_s < 1 or ban_s < 1:
        raise ValueError("pike_density, pike_interval_s and ban_s must be positive")
    if not 500 <= invite_timeout_ms <= ring_timeout_ms:
        raise ValueError("need 500 <= invite_timeout_ms <= ring_timeout_ms")
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    ds_path = run_dir / DISPATCHER_LIST_NAME
    ds_path.write_text(dispatcher_list(sip, worker_ids))

    host = _host_in_uri(sip.host)
    advertise = None
    if sip.advertised_host:
        advertise = f"{_host_in_uri(sip.advertised_host)}:{sip.port}"
    listen = [{"sock": f"{t}:{host}:{sip.port}", "advertise": advertise} for t in sip.transports]
    modules = module_dir or module_path(sip.kamailio_binary)
    tls_cfg = None
    if sip.tls:
        if not Path(modules, "tls.so").is_file():
            raise KamailioError(f"sip.tls needs Kamailio's tls module ({modules}/tls.so): "
                                "apt-get install kamailio-tls-modules")
        tls_cfg = _write_tls_cfg(sip, run_dir)
        tls_advertise = f"{_host_in_uri(sip.advertised_host)}:{sip.tls_port}" if sip.advertised_host else None
        listen.append({"sock": f"tls:{host}:{sip.tls_port}", "advertise": tls_advertise})
    ctl = run_dir / CTL_NAME
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    text = env.get_template("kamailio.cfg.j2").render(
        listen=listen,
        transports=sip.transports,
        tls_cfg=str(tls_cfg) if tls_cfg else None,
        uri_host=_host_in_uri(sip.advertised_host or sip.host),
        module_path=modules,
        destinations=list(range(len(ds_path.read_text().splitlines()) - 2)),
        dispatcher_list=str(ds_path),
        ds_setid=DS_SETID,
        ds_ping_interval=sip.probing_interval_s,
        ds_hash_size=max(4, ((sip.workers + len(sip.remote_workers)) * sip.max_calls_per_worker * 2).bit_length()),
        ds_hash_initexpire=max(10, ring_timeout_ms // 1000 + 10),
        ds_hash_expire=max_call_s,
        acl=",".join(str(n) for n in sip.acl),
        pike_density=pike_density,
        pike_interval_s=pike_interval_s,
        ban_s=ban_s,
        invite_timeout_ms=invite_timeout_ms,
        transaction_timeout_ms=transaction_timeout_ms,
        ring_timeout_ms=ring_timeout_ms,
        children=children,
        log_level=log_level,
        ctl_socket=str(ctl) if len(str(ctl)) <= _MAX_UNIX_SOCKET else None,
        max_per_source=sip.max_calls_per_source,
        max_per_caller=sip.max_calls_per_caller,
        dialog_timeout_s=max_call_s,
    )
    cfg = run_dir / CFG_NAME
    cfg.write_text(text)
    return cfg


def _write_tls_cfg(sip: SipSettings, run_dir: Path) -> Path:
    """The tls module's profile file: the certificate for callers, TLS 1.2 or newer, no client certificates."""
    if not (sip.tls_cert and sip.tls_key):
        raise KamailioError("sip.tls needs sip.tls_cert and sip.tls_key (hotline serve makes a self-signed pair)")
    cert, key = Path(sip.tls_cert).resolve(), Path(sip.tls_key).resolve()
    for f in (cert, key):
        if not f.is_file():
            raise KamailioError(f"SIP TLS file not found: {f}")
    profile = ("method = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
               f"certificate = {cert}\nprivate_key = {key}\n")
    path = run_dir / TLS_CFG_NAME
    # the server profile answers callers; the client one is used when Kamailio opens a connection to a caller
    path.write_text(f"[server:default]\n{profile}\n[client:default]\nmethod = TLSv1.2+\n"
                    "verify_certificate = no\nrequire_certificate = no\n")
    return path


def command(sip: SipSettings, cfg_path: Path, run_dir: Path) -> list[str]:
    """argv running Kamailio in the foreground, logging to stderr, with its files inside ``run_dir``."""
    run_dir = Path(run_dir).resolve()
    return [
        shutil.which(sip.kamailio_binary) or sip.kamailio_binary,
        "-f", str(Path(cfg_path).resolve()),
        "-DD",  # no daemon, the main process stays attached (supervisors, tests)
        "-E",  # log to stderr
        "-P", str(run_dir / PID_NAME),
        "-Y", str(run_dir),  # runtime dir: nothing under /run/kamailio
        "-L", module_path(sip.kamailio_binary),
        "-w", str(run_dir),  # working directory (core files)
    ]  # fmt: skip


def control_socket(run_dir: Path) -> Path | None:
    """The ctl module's binrpc socket for ``kamcmd -s unixs:PATH``, when the path was short enough."""
    ctl = Path(run_dir).resolve() / CTL_NAME
    return ctl if len(str(ctl)) <= _MAX_UNIX_SOCKET else None


def check(cfg_path: Path, binary: str = "kamailio") -> list[str]:
    """Parse the configuration with ``kamailio -c``; return the error lines (empty when it is valid)."""
    exe = shutil.which(binary) or binary
    try:
        proc = subprocess.run(
            [exe, "-c", "-f", str(cfg_path), "-L", module_path(binary)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError, KamailioError) as exc:
        return [f"cannot run {binary}: {exc}"]
    output = (proc.stdout + proc.stderr).splitlines()
    errors = [ln for ln in output if "ERROR" in ln or "CRITICAL" in ln or "BUG" in ln]
    if proc.returncode != 0 and not errors:
        errors = output[-20:] or [f"{binary} -c exited with {proc.returncode}"]
    return errors
