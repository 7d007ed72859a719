"""The worker's command socket against a small websockets hub on loopback."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from ivr.contract import BridgeCommand, CommandEnvelope, HangupCommand, QueueStatus, WorkerHello
from ivr.hub_commands import HubLink, command_url

TOKEN = "t" * 24


class FakeHub:
    """Accepts /internal/worker/ws with the bearer token, records hellos, sends what the test queues."""

    def __init__(self) -> None:
        self.hellos: list[WorkerHello] = []
        self.paths: list[str] = []
        self.refused = 0
        self.conn = None
        self.connected = asyncio.Event()
        self.server = None
        self.port = 0

    def check(self, connection, request):
        self.paths.append(request.path)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.refused += 1
            return Response(401, "Unauthorized", Headers(), b"")
        return None

    async def handler(self, ws):
        hello = WorkerHello.model_validate_json(await ws.recv())
        self.hellos.append(hello)
        self.conn = ws
        self.connected.set()
        try:
            await ws.wait_closed()
        finally:
            self.conn = None

    async def start(self, port: int = 0) -> FakeHub:
        self.server = await serve(self.handler, "127.0.0.1", port, process_request=self.check)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def send(self, command) -> None:
        await self.conn.send(CommandEnvelope(command=command).model_dump_json())


async def wait_for(pred, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_command_url_follows_the_hub_scheme():
    assert command_url("http://h:8368/", "w1") == "ws://h:8368/internal/worker/ws?worker=w1"
    assert command_url("https://hub.court.cn", "w0") == "wss://hub.court.cn/internal/worker/ws?worker=w0"


async def test_hello_dispatch_unknown_call_and_reconnect(caplog):
    hub = await FakeHub().start()
    calls = {"c1": [], "c2": []}
    unknown: list[str] = []

    def dispatch(cmd) -> None:
        if cmd.call_id in calls:
            calls[cmd.call_id].append(cmd)
        else:
            unknown.append(cmd.call_id)

    link = HubLink(f"http://127.0.0.1:{hub.port}", TOKEN, "w3", lambda: sorted(calls), dispatch, max_backoff=0.3)
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(hub.connected.wait(), 5)
        assert hub.paths == ["/internal/worker/ws?worker=w3"]
        assert hub.hellos[0].worker == "w3" and hub.hellos[0].calls == ["c1", "c2"] and hub.hellos[0].v == 1
        await wait_for(lambda: link.connected)

        await hub.send(QueueStatus(call_id="c1", position=2, operators_ready=0))
        await hub.send(BridgeCommand(call_id="c2", offer_id="o1", target="sip:op1@127.0.0.1:5099"))
        await hub.send(HangupCommand(call_id="gone", reason="test"))
        await hub.conn.send("not json")  # logged and ignored; the socket stays up
        await hub.conn.send(json.dumps({"v": 1, "command": {"type": "bridge", "call_id": "c2"}}))  # invalid
        await hub.send(QueueStatus(call_id="c1", position=1, operators_ready=1))
        await wait_for(lambda: len(calls["c1"]) == 2)
        assert [c.position for c in calls["c1"]] == [2, 1]
        assert calls["c2"][0].target == "sip:op1@127.0.0.1:5099" and calls["c2"][0].ring_timeout_s == 20.0
        assert unknown == ["gone"] and link.commands == 4 and link.connected

        # the hub goes away: the link notices, retries with backoff and says hello again when it is back
        port = hub.port
        await hub.stop()
        await wait_for(lambda: not link.connected)
        await asyncio.sleep(0.5)  # a few refused attempts
        calls["c3"] = []
        hub2 = await FakeHub().start(port)
        await asyncio.wait_for(hub2.connected.wait(), 5)
        assert hub2.hellos[0].calls == ["c1", "c2", "c3"]
        await wait_for(lambda: link.connected and link.connects == 2)
        await hub2.send(HangupCommand(call_id="c3"))
        await wait_for(lambda: len(calls["c3"]) == 1)
        await hub2.stop()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_wrong_token_is_refused_and_retried_without_dispatch():
    hub = await FakeHub().start()
    link = HubLink(f"http://127.0.0.1:{hub.port}", "wrong-token-xxxxxxxx", "w0", list, lambda c: None,
                   max_backoff=0.2)
    task = asyncio.create_task(link.run())
    try:
        await wait_for(lambda: hub.refused >= 3)
        assert not link.connected and link.connects == 0 and not hub.hellos
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await hub.stop()


async def test_the_worker_routes_commands_to_its_sessions(caplog):
    """Worker.dispatch: a known call gets the command, an unknown one is logged and ignored."""
    from ivr.worker import Worker

    got: list = []

    class Session:
        def on_command(self, cmd) -> None:
            got.append(cmd)

    w = Worker.__new__(Worker)  # no SIP stack needed for routing
    w.sessions = {"abc": Session()}
    caplog.set_level(logging.INFO)
    w.dispatch(QueueStatus(call_id="abc", position=0, operators_ready=1))
    w.dispatch(QueueStatus(call_id="nope", position=0, operators_ready=1))
    assert [c.call_id for c in got] == ["abc"]
