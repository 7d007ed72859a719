"""A stand-in console hub for IVR tests: stores worker events, holds the workers' command sockets.

It speaks the real contract (ivr/contract.py): ``POST /internal/events`` with an ``EventBatch``,
``/internal/worker/ws?worker=<name>`` (bearer worker token, ``WorkerHello`` first, then the test's
``CommandEnvelope`` messages). It runs uvicorn in a thread; every method is safe to call from the test.
"""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect

from ivr.contract import CommandEnvelope, EventBatch, HubCommand, WorkerHello


class FakeHub:
    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.events: list[dict] = []
        self.hellos: list[WorkerHello] = []
        self.sockets: dict[str, WebSocket] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        app = FastAPI()

        @app.post("/internal/events")
        async def events(request: Request):
            if request.headers.get("authorization") != f"Bearer {token}":
                raise HTTPException(401)
            batch = EventBatch.model_validate_json(await request.body())
            with self._lock:
                self.events.extend(e.model_dump(mode="json") for e in batch.events)
            return {"accepted": len(batch.events), "duplicates": 0}

        @app.websocket("/internal/worker/ws")
        async def worker_ws(ws: WebSocket, worker: str):
            if ws.headers.get("authorization") != f"Bearer {token}":
                await ws.close(code=4401)
                return
            await ws.accept()
            self.loop = asyncio.get_running_loop()
            hello = WorkerHello.model_validate_json(await ws.receive_text())
            with self._lock:
                self.hellos.append(hello)
                self.sockets[worker] = ws
            try:
                while True:
                    await ws.receive_text()
            except WebSocketDisconnect:
                pass
            finally:
                with self._lock:
                    if self.sockets.get(worker) is ws:
                        del self.sockets[worker]

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="fake-hub", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> FakeHub:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake hub did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def send(self, worker: str, command: HubCommand) -> None:
        ws = self.sockets[worker]
        text = CommandEnvelope(command=command).model_dump_json()
        asyncio.run_coroutine_threadsafe(ws.send_text(text), self.loop).result(5)

    def wait_worker(self, worker: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while worker not in self.sockets:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {worker} never connected its command socket")
            time.sleep(0.05)

    def of_call(self, call_id: str, type_: str | None = None) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e.get("call_id") == call_id and (type_ is None or e["type"] == type_)]

    def wait(self, pred, timeout: float = 20.0, what: str = "event") -> dict:
        """The first event matching ``pred``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for e in self.events:
                    if pred(e):
                        return e
            if time.monotonic() > deadline:
                with self._lock:
                    tail = [(e["type"], e.get("state") or e.get("outcome") or "") for e in self.events[-30:]]
                raise AssertionError(f"no {what} within {timeout} s; last events: {tail}")
            time.sleep(0.05)
