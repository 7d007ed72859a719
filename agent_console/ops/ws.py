"""The two websockets: ``/ws/operator`` (browsers, login cookie) and ``/internal/worker/ws`` (IVR workers).

Refusals happen before the handshake completes: an HTTP 401 (no login / no worker token) or 403 (wrong
role, foreign Origin) when the server supports websocket denial responses, else a close with code
4401 / 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from agent_console.auth.users import session_user
from agent_console.deps import MSG_FORBIDDEN, MSG_LOGIN_REQUIRED
from agent_console.models import User
from agent_console.ops.cluster import ClusteredOps
from agent_console.ops.hub import CONSOLE_ROLES, OpsHub
from agent_console.ops.protocol import ClientMessage, ErrorEvent, Welcome
from agent_console.ops.workers import WorkerConn
from agent_console.pii import mask_for
from ivr.contract import WorkerHello

log = logging.getLogger(__name__)
router = APIRouter()
Ops = OpsHub | ClusteredOps  # app.state.ops: one hub's, or one shared by several hubs
HELLO_TIMEOUT_S = 10.0
#: an open console socket re-reads its login this often: logged out, disabled or no longer a console role ->
#: the socket closes (code 4401) within this many seconds (plus one database read)
SESSION_RECHECK_S = 2.0


async def deny(ws: WebSocket, status_code: int, detail: str) -> None:
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"detail": detail}, status_code))
    else:
        await ws.close(code=4000 + status_code, reason=detail)


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if not origin:
        return True  # not a browser
    return urlsplit(origin).netloc == ws.headers.get("host", "")


def _user(ws: WebSocket) -> User | None:
    token = ws.cookies.get(ws.app.state.config.cookie_name)
    if not token:
        return None
    with ws.app.state.sessionmaker() as db:
        found = session_user(db, token)
        return found[1] if found else None


class _Conn:
    """One browser: a wake-up flag for new log entries and a box of control messages."""

    def __init__(self, ws: WebSocket, user: User):
        self.ws, self.user = ws, user
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.direct: list[dict[str, Any]] = []

    def notify(self) -> None:
        self.loop.call_soon_threadsafe(self.wake.set)

    def say(self, msg: dict[str, Any]) -> None:
        def put() -> None:
            self.direct.append(msg)
            self.wake.set()

        self.loop.call_soon_threadsafe(put)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(msg, ensure_ascii=False, separators=(",", ":")))


async def _pump(hub: Ops, conn: _Conn, cursor: int) -> None:
    role, uid = conn.user.role, conn.user.id
    while True:
        conn.wake.clear()
        while conn.direct:
            await conn.send(conn.direct.pop(0))
        entries = hub.log.since(cursor)
        if entries is None:  # fell further behind than the log keeps: start again from a snapshot
            snap = await run_in_threadpool(hub.snapshot, conn.user)
            await conn.send(_masked(role, snap.model_dump(mode="json")))
            cursor = snap.last_seq
            continue
        for e in entries:
            cursor = e.seq
            if e.visible_to(uid, role):
                await conn.send(e.payload_for(role))
        await conn.wake.wait()


def _masked(role: str, payload: dict[str, Any]) -> dict[str, Any]:

    return mask_for(role, payload)


@router.websocket("/ws/operator")
async def operator_ws(ws: WebSocket) -> None:
    user = await run_in_threadpool(_user, ws)
    if user is None:
        await deny(ws, 401, MSG_LOGIN_REQUIRED)
        return
    if user.role not in CONSOLE_ROLES or not _same_origin(ws):
        await deny(ws, 403, MSG_FORBIDDEN)
        return
    hub: Ops = ws.app.state.ops
    ensure_ticker(ws.app)
    await ws.accept()
    conn = _Conn(ws, user)
    await conn.send(Welcome(user_id=user.id, username=user.username, role=user.role, epoch=hub.epoch,
                            last_seq=hub.log.last_seq).model_dump(mode="json"))
    try:
        hello = await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT_S)
        msg = ClientMessage.model_validate({"message": json.loads(hello)}).message
        if msg.type != "hello":
            raise ValueError("hello first")
    except (TimeoutError, ValueError, ValidationError):
        await conn.send(ErrorEvent(code="hello_required", message="连接协议错误，请刷新页面").model_dump(mode="json"))
        await ws.close(code=4400)
        return
    except WebSocketDisconnect:
        return
    unsubscribe = hub.log.subscribe(conn.notify)
    await run_in_threadpool(hub.attach, user, conn.say)
    cursor = msg.resume_from
    if cursor == 0 or msg.epoch != hub.epoch or hub.log.since(cursor) is None:
        snap = await run_in_threadpool(hub.snapshot, user)
        await conn.send(_masked(user.role, snap.model_dump(mode="json")))
        cursor = snap.last_seq
    pump = asyncio.create_task(_pump(hub, conn, cursor))
    watch = asyncio.create_task(_watch_session(ws, conn, user.role))
    try:
        while True:
            raw = await ws.receive_text()
            ref = None
            try:
                data = json.loads(raw)
                ref = data.get("ref") if isinstance(data, dict) else None
                cmd = ClientMessage.model_validate({"message": data}).message
            except (ValueError, ValidationError):
                bad = ErrorEvent(code="bad_message", message="无法识别的指令",
                                 ref=ref if isinstance(ref, str) else None)
                conn.say(bad.model_dump(mode="json"))
                continue
            if cmd.type == "hello":
                continue
            error = await run_in_threadpool(hub.command, user, cmd)
            if error:
                conn.say(ErrorEvent(code="refused", message=error, ref=cmd.ref).model_dump(mode="json"))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        for task in (pump, watch):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        unsubscribe()
        hub.detach(user.id, conn.say)


async def _watch_session(ws: WebSocket, conn: _Conn, role: str) -> None:
    """Close the socket once its login ends (logout, disabled account, expired session, role changed)."""
    while True:
        await asyncio.sleep(SESSION_RECHECK_S)
        try:
            now = await run_in_threadpool(_user, ws)
        except Exception:  # noqa: BLE001 - a database hiccup is not a logout; look again next time
            log.exception("ops: could not re-check an operator session")
            continue
        if now is None or now.role != role or now.role not in CONSOLE_ROLES:
            log.info("ops: closing the console socket of %s: session ended", conn.user.username)
            with contextlib.suppress(Exception):
                ended = ErrorEvent(code="session_ended", message="登录已失效，请重新登录")
                await conn.send(ended.model_dump(mode="json"))
            with contextlib.suppress(Exception):
                await ws.close(code=4401, reason="session ended")
            return


# ------------------------------------------------------------------------------------- workers
@router.websocket("/internal/worker/ws")
async def worker_ws(ws: WebSocket, worker: str = "") -> None:
    expected: str = ws.app.state.config.worker_token
    auth = ws.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        await deny(ws, 401, "invalid or missing worker token")
        return
    hub: Ops = ws.app.state.ops
    ensure_ticker(ws.app)
    opened_at = hub.clock()  # the worker builds its hello after this: calls the hub knew before are in it, or gone
    await ws.accept()
    try:
        hello = WorkerHello.model_validate_json(await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT_S))
    except (TimeoutError, ValidationError, WebSocketDisconnect):
        with contextlib.suppress(Exception):
            await ws.close(code=4400, reason="WorkerHello expected")
        return
    if worker and hello.worker != worker:
        await ws.close(code=4400, reason="worker name differs from the query")
        return
    conn = WorkerConn(hello.worker, asyncio.get_running_loop(), calls=list(hello.calls))
    old = hub.workers.register(conn)
    if old is not None:
        old.loop.call_soon_threadsafe(old.outbox.put_nowait, "")  # "" = close
    log.info("ops: worker %s connected (%d live calls)", hello.worker, len(hello.calls))
    await run_in_threadpool(hub.on_worker_hello, hello.worker, list(hello.calls), opened_at)

    async def sender() -> None:
        while True:
            text = await conn.outbox.get()
            if not text:
                await ws.close(code=4409, reason="replaced by a newer connection")
                return
            await ws.send_text(text)

    send_task = asyncio.create_task(sender())
    try:
        while True:
            raw = await ws.receive_text()
            with contextlib.suppress(ValidationError):
                again = WorkerHello.model_validate_json(raw)
                conn.calls = list(again.calls)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        send_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await send_task
        hub.worker_closed(conn, hub.clock())
        log.info("ops: worker %s disconnected", hello.worker)


# ------------------------------------------------------------------------------------- the clock
def ensure_ticker(app: Any, interval_s: float = 0.2) -> None:
    """Run the hub's clock (offer and bridge timeouts) in the running loop, once per app."""
    task = getattr(app.state, "ops_ticker", None)
    loop = asyncio.get_running_loop()
    if task is not None and not task.done() and task.get_loop() is loop:
        return
    hub: Ops = app.state.ops

    async def tick() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await run_in_threadpool(hub.tick)
            except Exception:  # noqa: BLE001
                log.exception("ops: tick failed")

    app.state.ops_ticker = loop.create_task(tick())
