"""Issue 15, item 7: the hub serves HTTPS — a self-signed certificate made at first start, its fingerprint
printed, or the court's configured certificate — and the session cookie is Secure.

`hotline hub` in its own process with ``hub.tls`` on (what ./run.sh sets; the other tests keep plain HTTP).
Clients trust exactly the certificate file, as the supervisor makes the workers do (SSL_CERT_FILE)."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hotline.hub_tls import fingerprint, generate
from tests.browser import Hub, browser, login, requires_chromium
from tests.hotline_proc import Hotline, sip_ping

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parent.parent


def start(hub: Hub, **env: str) -> subprocess.Popen:
    hub.home.mkdir(parents=True, exist_ok=True)
    log = open(hub.home / "hub.log", "ab")  # noqa: SIM115 - owned by the child
    p = subprocess.Popen([sys.executable, "-m", "hotline", "hub"], env={**hub.env, "HOTLINE_HUB__TLS": "true",
                                                                        "HOTLINE_HUB__COOKIE_SECURE": "true", **env},
                         cwd=hub.home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return p


def wait_https(hub: Hub, cafile: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert proc.poll() is None, (hub.home / "hub.log").read_text()[-3000:]
        if cafile.exists():
            try:
                ctx = ssl.create_default_context(cafile=str(cafile))
                if httpx.get(f"https://127.0.0.1:{hub.port}/healthz", verify=ctx, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    raise AssertionError((hub.home / "hub.log").read_text()[-3000:])


def presented(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as s:
        der = s.getpeercert(binary_form=True)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(15)


def test_a_self_signed_certificate_is_made_once_printed_and_the_cookie_is_secure(tmp_path):
    hub = Hub(tmp_path / "home")
    hub.add_user("sup", "supervisor")
    cert = hub.home / "tls" / "hub.crt"
    proc = start(hub)
    try:
        wait_https(hub, cert, proc)
        printed = re.findall(r"SHA-256 fingerprint ([0-9A-F:]{95})", (hub.home / "hub.log").read_text())
        assert printed == [fingerprint(cert)] == [presented(hub.port)], printed
        assert "generated a self-signed certificate" in (hub.home / "hub.log").read_text()
        assert oct((hub.home / "tls" / "hub.key").stat().st_mode & 0o777) == "0o600"
        r = httpx.post(f"https://127.0.0.1:{hub.port}/api/auth/login", json={"username": "sup",
                       "password": "password123"}, verify=ssl.create_default_context(cafile=str(cert)), timeout=10)
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie, cookie
        assert "max-age=31536000" in r.headers["strict-transport-security"]
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the port
            httpx.get(f"http://127.0.0.1:{hub.port}/healthz", timeout=3).raise_for_status()
    finally:
        stop(proc)
    first = fingerprint(cert)
    proc = start(hub)  # a restart keeps the certificate
    try:
        wait_https(hub, cert, proc)
        assert fingerprint(cert) == first == presented(hub.port)
    finally:
        stop(proc)


class TlsHotline(Hotline):
    def wait_ready(self, timeout: float = 40.0) -> None:
        cert = self.home / "tls" / "hub.crt"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.alive(), self.proc.log()[-4000:]
            try:
                ok = httpx.get(f"https://127.0.0.1:{self.hub_port}/healthz", timeout=1,
                               verify=ssl.create_default_context(cafile=str(cert))).status_code == 200
            except (httpx.HTTPError, OSError):
                ok = False
            if ok and all(sip_ping(p) == 200 for p in self.worker_ports):
                return
            time.sleep(0.3)
        raise AssertionError(self.proc.log()[-4000:])


@pytest.mark.sip
def test_hotline_serve_with_https_workers_reach_the_hub(tmp_path):
    """The supervisor makes the certificate before anything starts; workers post events and hold their command
    socket over HTTPS, trusting that certificate: a call's record reaches the hub."""
    h = TlsHotline(tmp_path / "home", single=True, extra_env={"HOTLINE_HUB__TLS": "true"}).start()
    try:
        out = h.dial("--duration", "2")
        calls = h.wait_calls(lambda c: len(c) == 1 and c[0]["status"] == "ended", timeout=15)
        log = h.proc.log()
    finally:
        assert h.stop() == 0
    assert out["connected"] and calls[0]["end_cause"] == "caller_hangup", calls
    assert "SHA-256 fingerprint" in log and "hub_unreachable" not in log and "CERTIFICATE_VERIFY_FAILED" not in log


def test_a_configured_certificate_is_served(tmp_path):
    own = tmp_path / "court"
    generate(own / "court.crt", own / "court.key", "hotline.court.example")
    hub = Hub(tmp_path / "home")
    proc = start(hub, HOTLINE_HUB__TLS_CERT=str(own / "court.crt"), HOTLINE_HUB__TLS_KEY=str(own / "court.key"))
    try:
        wait_https(hub, own / "court.crt", proc)
        assert presented(hub.port) == fingerprint(own / "court.crt")
        assert not (hub.home / "tls").exists()  # nothing self-signed made
    finally:
        stop(proc)


@requires_chromium
def test_chromium_keeps_the_secure_cookie_over_https_and_the_console_goes_live(tmp_path):
    """Issue 15, acceptance 3: a real browser logs in over HTTPS; it stores the Secure, HttpOnly cookie, sends it
    back (the console page and its wss socket open) and a plain-HTTP page on the same port gets nothing."""
    hub = Hub(tmp_path / "home")
    hub.add_user("op1", "operator")
    cert = hub.home / "tls" / "hub.crt"
    proc = start(hub)
    base = f"https://127.0.0.1:{hub.port}"
    try:
        wait_https(hub, cert, proc)
        with browser(tmp_path) as chromium:
            # the self-signed certificate is compared by fingerprint by staff; Chromium is told to accept it
            context = chromium.new_context(ignore_https_errors=True)
            page = context.new_page()
            login(page, base, "op1")
            (cookie,) = [c for c in context.cookies(base) if c["httpOnly"]]
            assert cookie["secure"] and cookie["sameSite"] == "Lax", cookie
            page.wait_for_selector("#conn.ok", timeout=15_000)  # the console's wss socket, on that cookie
            assert page.url == f"{base}/"
            assert "就绪" in page.inner_text("body") or page.locator("button.presence").count() > 0
    finally:
        stop(proc)
