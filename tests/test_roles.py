"""Roles per host (issue 17): `hotline serve --roles front,hub` on one "host" and `--roles ivr` on others, on loopback.
Calls come in at the front door and are answered by the workers of another host; a host added to
``sip.remote_workers`` is taken on SIGHUP (``kamcmd dispatcher.reload``, no restart); when a host dies the next
call goes to the one left, and a host removed from the list is dropped from Kamailio's."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from sip_config import kamailio
from tests.hotline_proc import Hotline
from tests.sipsupport import free_port_block, requires_kamailio

pytestmark = [pytest.mark.sip, requires_kamailio]


def write_front_config(path: Path, workers: list[int]) -> None:
    path.write_text("[sip]\nremote_workers = [" + ", ".join(f'"127.0.0.1:{p}"' for p in workers) + "]\n")


def destinations(front: Hotline) -> dict[str, str]:
    """Kamailio's dispatcher list on the front host: {uri: flags} (A active, I inactive; P probing)."""
    ctl = kamailio.control_socket(front.home / "run")
    out = subprocess.run(["kamcmd", "-s", f"unixs:{ctl}", "dispatcher.list"], capture_output=True, text=True,
                         timeout=5)
    return dict(re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", out.stdout))


def wait_for(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


def worker_of_last_call(front: Hotline, before: set[str]) -> str:
    with sqlite3.connect(front.home / "hotline.db") as db:
        rows = db.execute("SELECT call_id, worker, status FROM calls").fetchall()
    new = [(w, st) for cid, w, st in rows if cid not in before]
    return new[0][0] if len(new) == 1 and new[0][1] == "ended" else ""


def call_ids(front: Hotline) -> set[str]:
    with sqlite3.connect(front.home / "hotline.db") as db:
        return {r[0] for r in db.execute("SELECT call_id FROM calls")}


def test_front_and_hub_on_one_host_workers_on_others_and_the_list_reloads(tmp_path):
    token = secrets.token_urlsafe(24)
    b_port, c_port = free_port_block(1), free_port_block(1)
    while c_port == b_port:
        c_port = free_port_block(1)
    config = tmp_path / "front.toml"
    write_front_config(config, [b_port])
    front = Hotline(tmp_path / "a", roles="front,hub", config=config,
                    extra_env={"HOTLINE_HUB__WORKER_TOKEN": token})

    def ivr_host(name: str, port: int, rtp: int) -> Hotline:
        """An IVR host: its workers report to the front host's hub and name the front door as their contact."""
        return Hotline(tmp_path / name, workers=1, roles="ivr", sip_port=front.sip_port, hub_port=front.hub_port,
                       worker_base=port, rtp_base=rtp,
                       extra_env={"HOTLINE_HUB__WORKER_TOKEN": token, "HOTLINE_SIP__WORKER_PREFIX": f"{name}-"})

    b = ivr_host("b", b_port, front.rtp_base + 1000)
    c = ivr_host("c", c_port, front.rtp_base + 2000)
    try:
        front.start()
        b.start()
        ds = (front.home / "run" / "dispatcher.list").read_text()
        assert "duid=w0" not in ds and f"duid=r-127.0.0.1-{b_port}" in ds, ds  # no worker of the front host's own
        wait_for(lambda: destinations(front).get(f"sip:127.0.0.1:{b_port};transport=udp", "").startswith("A"),
                 "host b's worker active at the front door")
        before = call_ids(front)
        out = front.dial("--dtmf", "wait:1,9", "--duration", "3")
        assert out["connected"], out
        assert wait_for(lambda: worker_of_last_call(front, before), "the call on the front host's record") == "b-w0"

        # host c comes: named in the settings file, taken by the running Kamailio on SIGHUP
        c.start()
        write_front_config(config, [b_port, c_port])
        os.kill(front.proc.pid, signal.SIGHUP)  # the supervisor only, not its process group
        wait_for(lambda: destinations(front).get(f"sip:127.0.0.1:{c_port};transport=udp", "").startswith("A"),
                 "host c's worker active after the reload")
        kamailio_pid = int((front.home / "run" / "kamailio.pid").read_text())

        # host b dies (every process of it): the next call goes to c
        os.killpg(b.proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        before = call_ids(front)
        out = front.dial("--dtmf", "wait:1,9", "--duration", "3")
        assert out["connected"], out
        assert wait_for(lambda: worker_of_last_call(front, before), "the call after b died") == "c-w0"
        print(f"\nfirst call after host b was killed: answered by c-w0, dialled and ended "
              f"{time.monotonic() - t0:.1f} s after the kill")

        # host b goes from the settings: dropped from Kamailio's list, which was never restarted
        write_front_config(config, [c_port])
        os.kill(front.proc.pid, signal.SIGHUP)
        wait_for(lambda: f"sip:127.0.0.1:{b_port};transport=udp" not in destinations(front), "host b dropped")
        assert int((front.home / "run" / "kamailio.pid").read_text()) == kamailio_pid
        assert "dispatcher_reloaded" in front.proc.log()
    finally:
        for h in (c, b, front):
            if h.proc is not None:
                h.stop()


def test_a_front_door_with_no_worker_anywhere_does_not_start(tmp_path):
    front = Hotline(tmp_path / "a", roles="front,hub")
    front.home.mkdir(parents=True)
    r = front.cli("serve", "--roles", "front,hub", timeout=60)
    assert r.returncode == 1
    assert "no IVR worker to dispatch to" in r.stdout + r.stderr


def test_roles_are_checked(tmp_path):
    r = Hotline(tmp_path / "a").cli("serve", "--roles", "front,dsp")
    assert r.returncode == 2 and "dsp: roles are front, hub, ivr, speech" in r.stderr, r.stderr



def test_doctor_names_a_worker_host_and_a_speech_host_that_do_not_answer(tmp_path):
    dead_worker, dead_speech = free_port_block(1), free_port_block(1)
    h = Hotline(tmp_path / "a", extra_env={
        "HOTLINE_SIP__REMOTE_WORKERS": json.dumps([f"127.0.0.1:{dead_worker}"]),
        "HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_SPEECH__URL": json.dumps([f"ws://127.0.0.1:{dead_speech}"])})
    h.home.mkdir(parents=True)
    r = h.cli("doctor", "--json")
    checks = {c["name"]: c for c in map(json.loads, r.stdout.splitlines())}
    worker = checks[f"worker 127.0.0.1:{dead_worker}"]
    assert worker["status"] == "fail" and "does not answer SIP OPTIONS" in worker["detail"], worker
    speech = checks["speech service"]
    assert speech["status"] != "ok" and f"ws://127.0.0.1:{dead_speech}" in speech["detail"], speech
    assert r.returncode == 1


@pytest.mark.parametrize(("env", "key"), [
    ({"HOTLINE_SIP__REMOTE_WORKERS": '["10.0.0.2"]'}, "sip.remote_workers"),
    ({"HOTLINE_SPEECH__URL": '["ws://10.0.0.2:2700", "http://10.0.0.3:2700"]'}, "speech.url"),
])
def test_a_host_list_that_is_wrong_stops_start_up_naming_the_key(tmp_path, env, key):
    r = Hotline(tmp_path / "a", extra_env=env).cli("config", "check")
    assert r.returncode == 2 and f"key '{key}'" in r.stderr, r.stderr
