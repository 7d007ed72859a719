"""Issue 17: several hubs behind a real HAProxy, sharing one Redis: a hub killed mid-stream costs its browsers a
reconnect through HAProxy to another hub, where they resume from their seq and see every event once."""

from __future__ import annotations

import os
import shutil
import signal
import time
from types import SimpleNamespace

import httpx
import pytest
from pydantic import ValidationError

from balancer import haproxy
from balancer.settings import BalancerSettings
from ivr.contract import SpeechHeard
from tests.browser import Hub
from tests.ops_support import TOKEN, Operator, add_users, login_cookie, queued_call
from tests.sipsupport import Proc, free_udp_port

requires_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None,
                                      reason="haproxy is not installed: scripts/setup.sh --dev installs it")
pytestmark = [requires_haproxy, pytest.mark.timeout(240)]


def test_the_rendered_config_is_valid_and_bad_settings_are_refused(tmp_path):
    s = BalancerSettings(hubs=["10.0.0.2:8368", "10.0.0.3:8368"], backup_hubs=["10.0.0.4:8368"], host="0.0.0.0",
                         port=8360)
    cfg = haproxy.render(s, tmp_path)
    assert haproxy.check(s, cfg) == []
    text = cfg.read_text()
    assert "server hub1 10.0.0.2:8368 check" in text and "server hub2 10.0.0.3:8368 check" in text
    assert "server backup1 10.0.0.4:8368 check backup" in text
    assert "option httpchk GET /healthz" in text and "on-marked-down shutdown-sessions" in text
    with pytest.raises(ValidationError, match="not host:port"):
        BalancerSettings(hubs=["10.0.0.2"])
    with pytest.raises(haproxy.HaproxyError, match="hubs_ca_file"):
        haproxy.render(BalancerSettings(hubs=["10.0.0.2:8368"], hubs_tls=True), tmp_path)
    with pytest.raises(haproxy.HaproxyError, match="balancer.hubs is empty"):
        haproxy.render(BalancerSettings(), tmp_path)


def post_events_through(lb, events: list, timeout: float = 15.0) -> None:
    """As a worker does: to hub.url (HAProxy), again until a hub takes them (the worker's spool does the same)."""
    from ivr.contract import EventBatch

    body = EventBatch(events=events).model_dump(mode="json")
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.post(f"{lb.url}/internal/events", json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                           timeout=5)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "no hub took the events"
        time.sleep(0.2)


def wait_states(run_dir, want: dict[str, str], timeout: float = 20.0) -> None:
    """Until HAProxy's health checks see each hub as ``want`` says (its stats socket appears once it runs)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while not all(states.get(k, "").startswith(v) for k, v in want.items()):
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
        try:
            states = haproxy.server_states(run_dir)
        except OSError:
            states = {}


def test_a_hub_killed_mid_stream_its_browser_reconnects_through_haproxy_and_resumes(tmp_path, fresh_redis):
    home = tmp_path / "home"
    hubs = [Hub(home) for _ in range(2)]
    for h in hubs:
        h.env.update({"HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_REDIS__URL": fresh_redis.url})
    settings = BalancerSettings(hubs=[f"127.0.0.1:{h.port}" for h in hubs], port=free_udp_port(),
                                check_interval_ms=300)
    run = tmp_path / "lb"
    lb_proc = Proc("haproxy", haproxy.command(settings, haproxy.render(settings, run)), run / "haproxy.log", run)
    lb = SimpleNamespace(url=f"http://127.0.0.1:{settings.port}", home=home)
    try:
        hubs[0].start()  # only hub1 is up: the browser lands there
        lb_proc.start()
        wait_states(run, {"hub1": "UP", "hub2": "DOWN"})
        add_users(hubs[0], ("sup1", "supervisor", None))
        browser = Operator(lb, login_cookie(lb, "sup1"))
        browser.until("snapshot")
        hubs[1].start()
        wait_states(run, {"hub1": "UP", "hub2": "UP"})

        post_events_through(lb, queued_call("lb1"))
        k = {"call_id": "lb1", "worker": "w0"}
        post_events_through(lb, [SpeechHeard(**k, node="consult", speaker="caller", kind="final", text=f"第{i}句")
                                 for i in range(3)])
        browser.until("call_view", line__text="第2句", timeout=10)
        last, epoch = browser.seqs()[-1], browser.welcome["epoch"]

        os.killpg(hubs[0].proc.popen.pid, signal.SIGKILL)  # hub1 dies; HAProxy takes it out
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 10 and not closed:
            try:
                browser.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - the socket was closed under it: what the browser sees
                closed = True
        assert closed, "the browser's socket on the dead hub stayed open"
        for i in range(3, 6):  # the call goes on; its worker now reaches hub2 through HAProxy
            post_events_through(lb, [SpeechHeard(**k, node="consult", speaker="caller", kind="final",
                                                 text=f"第{i}句")])
        back = Operator(lb, login_cookie(lb, "sup1"), resume_from=last, epoch=epoch)
        back.until("call_view", line__text="第5句", timeout=10)
        back.drain(0.3)
        print(f"browser back on hub2 {time.monotonic() - t0:.1f} s after hub1 was killed")
        assert not [e for e in back.events if e["type"] == "snapshot"]  # resumed from its seq
        seen = browser.seqs() + back.seqs()
        assert seen == sorted(seen) and len(seen) == len(set(seen))  # every event once
        lines = [e["line"]["text"] for e in browser.events + back.events
                 if e["type"] == "call_view" and e.get("line") and e["line"]["text"].startswith("第")]
        assert lines == [f"第{i}句" for i in range(6)]
        assert haproxy.server_states(run)["hub1"].startswith("DOWN")
        back.close()
    finally:
        lb_proc.stop()
        for h in hubs:
            h.stop()


def test_doctor_names_a_balanced_hub_that_does_not_answer(tmp_path):
    import json
    import subprocess
    import sys

    dead = f"127.0.0.1:{free_udp_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({"HOTLINE_HOME": str(tmp_path), "HOTLINE_BALANCER__HUBS": json.dumps([dead])})
    out = subprocess.run([sys.executable, "-m", "hotline", "doctor", "--json"], env=env, capture_output=True,
                         text=True, timeout=120).stdout
    checks = {c["name"]: c for c in map(json.loads, (x for x in out.splitlines() if x.startswith("{")))}
    assert checks[f"hub {dead}"]["status"] == "fail" and "HAProxy skips it" in checks[f"hub {dead}"]["detail"]


def test_serve_with_the_front_role_runs_haproxy_in_front_of_the_hubs_named(tmp_path, fresh_redis):
    """`hotline serve --roles front` with balancer.hubs: HAProxy (beside Kamailio) forwards to the hubs; SIGTERM
    stops it with the rest."""
    import json
    import subprocess
    import sys

    home = tmp_path / "home"
    hub = Hub(home)
    hub.env.update({"HOTLINE_REDIS__URL": fresh_redis.url})
    port = free_udp_port()
    env = {**hub.env, "HOTLINE_BALANCER__HUBS": json.dumps([f"127.0.0.1:{hub.port}"]),
           "HOTLINE_BALANCER__PORT": str(port), "HOTLINE_SIP__PORT": str(free_udp_port()),
           "HOTLINE_SPEECH__ENABLED": "false",
           "HOTLINE_SIP__REMOTE_WORKERS": json.dumps([f"127.0.0.1:{free_udp_port()}"])}  # Kamailio needs one
    front = None
    try:
        hub.start()
        front = subprocess.Popen([sys.executable, "-m", "hotline", "serve", "--roles", "front"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert front.poll() is None and time.monotonic() < deadline, front.stdout.read().decode()[-3000:]
            time.sleep(0.2)
        assert (home / "run" / "haproxy.cfg").is_file()
        front.send_signal(signal.SIGTERM)
        assert front.wait(timeout=30) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        if front and front.poll() is None:
            os.killpg(front.pid, signal.SIGKILL)
        hub.stop()


def test_a_recording_written_by_a_worker_is_played_from_any_hub(tmp_path):
    """files_dir shared by the hosts: hub 1 files the order of a recorded message, hub 2 (its own home) serves the
    WAV to a supervisor; a name the order does not list is not served."""
    from datetime import UTC, datetime

    from ivr.contract import CallOffered, MessageRecorded
    from tests.ops_support import post_events

    shared = tmp_path / "shared"  # the NFS mount of every host
    (shared / "recordings").mkdir(parents=True)
    hubs = [Hub(tmp_path / f"home{i}") for i in (1, 2)]
    for h in hubs:
        h.env.update({"HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_HUB__SECRET_KEY": "s" * 40,
                      "HOTLINE_DATABASE_URL": f"sqlite:///{shared / 'hotline.db'}",
                      "HOTLINE_FILES_DIR": str(shared)})
    try:
        for h in hubs:
            h.start()
        add_users(SimpleNamespace(home=shared), ("sup", "supervisor", None))
        wav = shared / "recordings" / "rec1-contact_judge.wav"
        wav.write_bytes(b"RIFF" + bytes(200))  # what the worker on host B wrote before reporting the message
        (shared / "recordings" / "other-call.wav").write_bytes(b"RIFF" + bytes(10))
        k = {"call_id": "rec1", "worker": "w0"}
        now = datetime.now(UTC)
        post_events(hubs[0], [CallOffered(**k, ts=now, caller="13812345678", callee="12368", source="x"),
                              MessageRecorded(**k, ts=now, node="m", purpose="contact_judge",
                                              recording=wav.name, duration_s=3.0, text="请法官回电")])
        sup = httpx.Client(base_url=hubs[1].url, cookies={"hotline_session": login_cookie(hubs[1], "sup")})
        deadline = time.monotonic() + 15
        while not (orders := [o for o in sup.get("/api/work_orders").json() if o.get("call_id") == "rec1"]):
            assert time.monotonic() < deadline, "no order for the message"
            time.sleep(0.2)
        order = sup.get(f"/api/work_orders/{orders[0]['id']}").json()
        assert order["recordings"] == [wav.name]
        r = sup.get(f"/api/work_orders/{order['id']}/recordings/{wav.name}")
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav" and r.content == wav.read_bytes()
        for name in ("other-call.wav", "..%2Fhotline.db", "nothing.wav"):
            assert sup.get(f"/api/work_orders/{order['id']}/recordings/{name}").status_code == 404, name
        anon = httpx.get(f"{hubs[1].url}/api/work_orders/{order['id']}/recordings/{wav.name}")
        assert anon.status_code == 401
    finally:
        for h in hubs:
            h.stop()
