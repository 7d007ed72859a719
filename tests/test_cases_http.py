"""The HTTP case-system adapter against a fake court server on 127.0.0.1 (real HTTP, a ``http.server`` thread):
found / 404 / retries on 5xx and refused connections (counted) / read timeout / invalid JSON / bad status —
and the hub's IVR endpoints with that backend down: the caller gets the apology, nothing counts as a failure."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent_console.app import create_app
from agent_console.config import HubConfig
from court_cases.http import HttpCaseSystem
from court_cases.models import VerifyAttempt
from court_cases.settings import CaseSettings
from court_cases.spoken import SAY_UNAVAILABLE
from court_cases.system import CaseSystemUnavailable
from hotline.db import make_engine, upgrade_engine

TOKEN = "court-token"
NUMBER = "（2026）粤0305民初1234号"
CASE = {"case_number": NUMBER, "lookup_number": "26011234", "cause": "民间借贷纠纷",
        "parties": [{"name": "张伟", "role": "原告"}, {"name": "李强", "role": "被告"}], "stage": "审理中",
        "next_hearing": {"at": "2027-03-05T09:30:00+08:00", "place": "第三法庭"}, "judge": "王明", "clerk": "陈静",
        "department": "民一庭", "judge_team_line": "sip:8101@pbx.court.example", "updated_at": "2027-02-20 16:00",
        "some_future_field": {"ignored": True}}
SECRETS = {"123456", "11001X"}


class FakeCourt:
    """A court case system: ``script`` holds what the next requests get instead of the normal answer."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.requests: list[tuple[str, str, str | None, bytes]] = []
        court = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536  # one segment per response: no Nagle / delayed-ACK stalls on loopback

            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:  # the client gave up (timeout tests)
                    pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                court.requests.append((method, self.path, self.headers.get("Authorization"), body))
                action = court.script.pop(0) if court.script else "normal"
                if action.startswith("status:"):
                    return self._send(int(action[7:]), b'{"error": "x"}')
                if action.startswith("slow:"):
                    time.sleep(float(action[5:]))
                elif action == "garbage":
                    return self._send(200, b"<html>oops</html>", "text/html")
                elif action == "schema":
                    return self._send(200, json.dumps({"case_number": NUMBER, "stage": "whatever"}).encode())
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, b'{"error": "token"}')
                prefix = "/api/12368/cases/"
                if not self.path.startswith(prefix):
                    return self._send(404, b"{}")
                rest = self.path[len(prefix):]
                verify = rest.endswith("/verify")
                number = unquote(rest.removesuffix("/verify"))
                if number not in (CASE["case_number"], CASE["lookup_number"]):
                    return self._send(404, b'{"error": "not found"}')
                if verify:
                    ok = json.loads(body).get("secret") in SECRETS
                    return self._send(200, json.dumps({"ok": ok}).encode())
                return self._send(200, json.dumps(CASE, ensure_ascii=False).encode())

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/12368"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def court():
    c = FakeCourt()
    yield c
    c.close()


@pytest.fixture
def system(court):
    s = HttpCaseSystem(court.url, TOKEN, timeout_s=0.5, retries=2, retry_backoff_s=0.01)
    yield s
    s.close()


def _no_pii(caplog) -> str:
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("张伟", "李强", "1234号", "123456", "11001X", "26011234"):
        assert secret not in text, (secret, text)
    return text


def test_found_by_number_keypad_and_lookup(court, system):
    for said in (NUMBER, "2026*440305*1*1234#", "26011234"):
        case = system.get_case(said)
        assert case is not None and case.case_number == NUMBER and case.stage.value == "in_trial"
    assert case.next_hearing.place == "第三法庭" and case.next_hearing.at.utcoffset().total_seconds() == 8 * 3600
    assert case.updated_at.utcoffset().total_seconds() == 8 * 3600  # no offset given: the court's zone
    assert [p.name for p in case.parties] == ["张伟", "李强"]
    method, path, auth, _ = court.requests[0]
    assert method == "GET" and auth == f"Bearer {TOKEN}"
    assert path == "/api/12368/cases/%EF%BC%882026%EF%BC%89%E7%B2%A40305%E6%B0%91%E5%88%9D1234%E5%8F%B7"
    assert court.requests[2][1] == "/api/12368/cases/26011234"
    assert system.requests == 3


def test_not_found_is_none_and_not_retried(court, system):
    assert system.get_case("（2099）粤0305民初1号") is None
    assert system.get_case("not a number") is None  # never sent
    assert len(court.requests) == 1 and system.requests == 1


def test_5xx_is_retried_then_answers(court, system):
    court.script = ["status:502", "status:503"]
    assert system.get_case(NUMBER).judge == "王明"
    assert len(court.requests) == 3 and system.requests == 3


def test_5xx_every_time_is_unavailable_after_the_retries(court, system, caplog):
    court.script = ["status:500"] * 5
    with caplog.at_level(logging.ERROR), pytest.raises(CaseSystemUnavailable):
        system.get_case(NUMBER)
    assert len(court.requests) == 3
    text = _no_pii(caplog)
    assert "case system unavailable: GET （2026）粤0305民初****号: HTTP 500 (3 attempts" in text


def test_read_timeout_is_unavailable_at_once(court, system, caplog):
    court.script = ["slow:1.5"]
    t = time.monotonic()
    with caplog.at_level(logging.ERROR), pytest.raises(CaseSystemUnavailable):
        system.get_case(NUMBER)
    assert time.monotonic() - t < 1.2 and len(court.requests) == 1  # the caller is waiting: no retry
    assert "timeout" in _no_pii(caplog)


@pytest.mark.parametrize("action,reason", [("garbage", "not JSON"), ("schema", "invalid case JSON"),
                                           ("status:401", "HTTP 401"), ("status:400", "HTTP 400")])
def test_garbage_and_other_statuses_are_unavailable(court, system, caplog, action, reason):
    court.script = [action]
    with caplog.at_level(logging.ERROR), pytest.raises(CaseSystemUnavailable):
        system.get_case(NUMBER)
    assert reason in _no_pii(caplog) and len(court.requests) == 1


def test_wrong_token_is_unavailable_not_not_found(court):
    s = HttpCaseSystem(court.url, "wrong", timeout_s=0.5, retries=0)
    try:
        with pytest.raises(CaseSystemUnavailable):
            s.get_case(NUMBER)
    finally:
        s.close()


def test_refused_connection_is_retried_then_unavailable(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = HttpCaseSystem(f"http://127.0.0.1:{port}", TOKEN, timeout_s=0.5, retries=2, retry_backoff_s=0.01)
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(CaseSystemUnavailable):
            s.get_case(NUMBER)
        assert s.requests == 3
        with pytest.raises(CaseSystemUnavailable):
            s.verify(NUMBER, "123456")
        assert s.requests == 4  # a verification is sent once
    finally:
        s.close()
    assert "cannot connect" in _no_pii(caplog)


def test_verify(court, system, caplog):
    assert system.verify(NUMBER, "123456") is True
    assert system.verify("26011234", "11001*") is True  # keypad * is X
    assert json.loads(court.requests[-1][3]) == {"secret": "11001X"}
    assert court.requests[-1][1].endswith("/26011234/verify")
    assert system.verify(NUMBER, "000000") is False
    assert system.verify("（2099）粤0305民初1号", "123456") is False  # 404
    n = len(court.requests)
    court.script = ["status:503"]
    with caplog.at_level(logging.ERROR), pytest.raises(CaseSystemUnavailable):
        system.verify(NUMBER, "123456")
    assert len(court.requests) == n + 1  # never repeated
    court.script = ["garbage"]
    with pytest.raises(CaseSystemUnavailable):
        system.verify(NUMBER, "123456")
    court.script = ["slow:1.5"]
    with pytest.raises(CaseSystemUnavailable):
        system.verify(NUMBER, "123456")
    _no_pii(caplog)


def test_hub_with_the_court_system_down_apologises_and_counts_nothing(court, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    cases = CaseSettings(backend="http", url=court.url, token=TOKEN, timeout_s=0.5, retries=1, retry_backoff_s=0.01)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token="w" * 20, cookie_secure=False, cases=cases), engine)
    auth = {"Authorization": "Bearer " + "w" * 20}
    try:
        with TestClient(app) as c:
            r = c.post("/internal/cases/lookup", json={"number": "2026*440305*1*1234#"}, headers=auth).json()
            assert r["result"] == "found" and r["case_number"] == NUMBER and r["verified"] is False
            assert r["status"] is None and "张伟" not in json.dumps(r, ensure_ascii=False)
            court.script = ["status:503"] * 2
            r = c.post("/internal/cases/lookup", json={"number": NUMBER}, headers=auth).json()
            assert r["result"] == "unavailable" and r["say"] == SAY_UNAVAILABLE
            for _ in range(4):  # more than verify_max_failures: an outage never locks anybody out
                court.script = ["status:503"]
                body = {"number": NUMBER, "secret": "000000", "caller": "13800000000"}
                r = c.post("/internal/cases/verify", json=body, headers=auth).json()
                assert r["result"] == "unavailable" and r["say"] == SAY_UNAVAILABLE
            r = c.post("/internal/cases/verify", json={"number": NUMBER, "secret": "123456", "caller": "13800000000"},
                       headers=auth).json()
            assert r["result"] == "ok" and "下次开庭时间是二零二七年三月五日" in r["status"]
            assert r["case"]["judge_team_line"] == "sip:8101@pbx.court.example"
        with app.state.sessionmaker() as db:
            assert [a.result for a in db.scalars(select(VerifyAttempt).order_by(VerifyAttempt.id))] == \
                ["unavailable"] * 4 + ["ok"]
    finally:
        engine.dispose()
