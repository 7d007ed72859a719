"""Faults: a worker killed mid-call, hostile SIP traffic, invalid menus and settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests import hostile_sip
from tests.hotline_proc import Hotline, sip_ping
from tests.sipsupport import SIPP_DIR, free_udp_port, requires_kamailio, requires_sipp, sipp_argv

pytestmark = [pytest.mark.sip, requires_kamailio]


def worker_pid(hotline: Hotline, index: int) -> int:
    out = subprocess.run(["pgrep", "-f", f"hotline worker --index {index}"], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    env_home = str(hotline.home)
    for pid in pids:  # only ours: same HOTLINE_HOME
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if f"HOTLINE_HOME={env_home}".encode() in environ:
            return pid
    raise AssertionError(f"worker {index} not running")


@requires_sipp
def test_sigkill_of_a_worker_during_8_calls(tmp_path):
    h = Hotline(tmp_path / "home", workers=2).start()
    try:
        # 8 calls of 12 s through Kamailio: call-load dispatch puts 4 on each worker
        sipp = subprocess.Popen(sipp_argv([
            "-sf", str(SIPP_DIR / "uac_call.xml"), "-s", "12368", f"127.0.0.1:{h.sip_port}",
            "-i", "127.0.0.1", "-bind_local", "-p", str(free_udp_port()), "-mp", str(free_udp_port(tcp=False)),
            "-m", "8", "-l", "8", "-r", "20", "-d", "12000", "-recv_timeout", "20000",
            "-default_behaviors", "all,-bye"], 40), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_calls(lambda c: sum(x["status"] == "answered" for x in c) == 8, timeout=15)
        victim = worker_pid(h, 0)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        back = None
        while time.monotonic() - killed_at < 10:
            try:
                if worker_pid(h, 0) != victim and sip_ping(h.worker_base) == 200:
                    back = time.monotonic() - killed_at
                    break
            except AssertionError:
                pass
            time.sleep(0.1)
        print(f"\nworker w0 answered SIP again {back:.2f} s after SIGKILL" if back else "\nworker w0 not back")
        assert back is not None and back < 5
        sipp.wait(40)
        calls = h.wait_calls(lambda c: len(c) == 8 and all(x["status"] == "ended" for x in c), timeout=15)
        lost = [c for c in calls if c["worker"] == "w0"]
        kept = [c for c in calls if c["worker"] == "w1"]
        assert len(lost) == 4 and len(kept) == 4
        assert all(c["end_cause"] == "worker_lost" and c["end_side"] == "system" for c in lost), lost
        # the other worker's calls ran to the caller's BYE after 12 s, unharmed
        assert all(c["end_cause"] == "caller_hangup" for c in kept), kept
        # and the next call is answered
        assert h.dial("--duration", "2")["connected"]
    finally:
        assert h.stop() == 0


N_HOSTILE = 14 * 100  # 100 of each kind; bench/hostile_sip.py sends 10,000 and checks memory stays flat


@pytest.mark.timeout(300)
def test_malformed_or_hostile_messages_are_refused_then_a_valid_call(tmp_path):
    h = Hotline(tmp_path / "home", workers=1, extra_env={"HOTLINE_SIP__ACL": '["127.0.0.1/32"]'}).start()
    try:
        w0 = worker_pid(h, 0)
        replies: dict[str, int] = {}
        # 1 in 5 to the front door (its flood limit is 120 requests per 2 s from one address), the rest to a worker
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 5999 if hostile_sip.free(5999) else 0))
            s.settimeout(0.004)
            hostile_sip.send(s, hostile_sip.hostile_messages("127.0.0.1", h.sip_port, N_HOSTILE),
                             [h.sip_port] + [h.worker_base] * 4, replies)
        # an INVITE flood from a source outside the ACL gets 403 or nothing
        flood = hostile_sip.flood_from_disallowed(h.sip_port, h.worker_base)
        print(f"\nreplies to {N_HOSTILE} hostile messages: {dict(sorted(replies.items()))}; "
              f"flood from 127.0.0.2: {flood}")
        assert hostile_sip.refused_all(replies), replies
        assert sum(replies.values()) > N_HOSTILE // 2, "the hotline answered too few (or nothing at all)"
        assert set(flood) <= {"403", "silence"}
        assert h.proc.alive() and worker_pid(h, 0) == w0, "a process died"
        out = h.dial("--duration", "2")
        assert out["connected"], out
    finally:
        assert h.stop() == 0


def test_invalid_settings_and_menu_are_refused_naming_file_line_and_key(tmp_path):
    cfg = tmp_path / "hotline.toml"
    cfg.write_text("[sip]\nport = 'five'\n", encoding="utf-8")
    env = dict(os.environ, HOTLINE_HOME=str(tmp_path / "home"))
    r = subprocess.run([sys.executable, "-m", "hotline", "serve", "--config", str(cfg)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"{cfg}:2: key 'sip.port'" in r.stderr, r.stderr
    cfg.write_text("[sip]\nport = 5060\nworkerz = 3\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "hotline", "serve", "--config", str(cfg)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "key 'sip.workerz'" in r.stderr and "unknown key" in r.stderr, r.stderr
    cfg.write_text("[sip\nport = 5060\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "hotline", "serve", "--config", str(cfg)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "line 1" in r.stderr, r.stderr
    menu = tmp_path / "menu.yaml"
    menu.write_text("start: a\nnodes:\n  a:\n    - play: welcome\n    - gotoo: a\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "hotline", "serve"], env=dict(env, HOTLINE_IVR__MENU_FILE=str(menu)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"{menu}:5:" in r.stderr and "unknown verb 'gotoo'" in r.stderr, r.stderr
