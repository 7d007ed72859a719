"""Headless Debian Chromium driven by Playwright (never a downloaded browser), against a real hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.sipsupport import Proc, free_udp_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
requires_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


class Hub:
    """`hotline hub` in its own process and home, with users created through the CLI."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_udp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        self.env.update({"HOTLINE_HOME": str(home), "HOTLINE_HUB__PORT": str(self.port),
                         "HOTLINE_HUB__COOKIE_SECURE": "false", "HOTLINE_LOG__LEVEL": "warning",
                         "HOTLINE_CASES__LOAD_DEMO": "true"})
        self.proc: Proc | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hotline", *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def add_user(self, name: str, role: str, password: str = "password123") -> None:
        r = self.cli("users", "add", name, "--role", role, "--password", password)
        assert r.returncode == 0, r.stderr

    def start(self) -> Hub:
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = _EnvProc("hub", [sys.executable, "-m", "hotline", "hub"], self.home / "hub.log", self.home,
                             self.env).start()
        # a loaded 2-core machine has taken 37 s to start a hub (migrations, the demo cases' scrypt hashes)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.alive(), self.proc.log()[-3000:]
            time.sleep(0.2)
        log = self.proc.log()[-3000:]
        self.proc.stop(10)  # a hub that never came up must not outlive the test
        raise RuntimeError(f"hub not up:\n{log}")

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(10)


class _EnvProc(Proc):
    def __init__(self, name, argv, log_path, cwd, env):
        super().__init__(name, argv, log_path, cwd)
        self.env = env

    def start(self):
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


class _NoCspBrowser:
    """A Chromium whose pages ignore the hub's Content-Security-Policy: Playwright's string predicates
    (``wait_for_function("...")``) are evaluated with eval, which the hub's CSP forbids (no 'unsafe-eval')."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_page(self, **kw):
        return self._browser.new_page(**{"bypass_csp": True, **kw})

    def new_context(self, **kw):
        return self._browser.new_context(**{"bypass_csp": True, **kw})

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@contextmanager
def browser(tmp_path: Path, csp: bool = True) -> Iterator:
    """Chromium; ``csp`` False for tests that evaluate string predicates (the pages run under the CSP otherwise)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield b if csp else _NoCspBrowser(b)
        finally:
            b.close()


def login(page, base: str, user: str, password: str = "password123") -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
