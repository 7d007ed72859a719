"""The worker's end of the hub's command socket (``/internal/worker/ws``; see ivr/contract.py).

One task in the worker's asyncio loop keeps a websocket to the hub open: it connects with the
worker token, sends a ``WorkerHello`` naming the calls live on this worker, then hands every
``CommandEnvelope`` to ``dispatch`` (the worker routes it to the call's session). When the socket
drops or cannot be opened it tries again with a growing delay (0.2 s doubling to ``max_backoff``).
Events never travel this socket: they keep the spooled HTTP path, so nothing is lost while it is down.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog
import websockets
from pydantic import ValidationError
from websockets.asyncio.client import connect

from ivr.contract import CommandEnvelope, HubCommand, WorkerHello

log = structlog.get_logger(__name__)

WS_PATH = "/internal/worker/ws"


def command_url(hub_url: str, worker: str) -> str:
    base = hub_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return f"{base}{WS_PATH}?worker={worker}"


class HubLink:
    """Keeps the command socket open; ``connected`` says whether the hub can reach this worker now."""

    def __init__(self, hub_url: str, token: str, worker: str, live_calls: Callable[[], list[str]],
                 dispatch: Callable[[HubCommand], None], *, min_backoff: float = 0.2, max_backoff: float = 5.0,
                 open_timeout: float = 3.0, ping_interval: float = 10.0):
        self.url = command_url(hub_url, worker)
        self.worker = worker
        self._headers = {"Authorization": f"Bearer {token}"}
        self._live_calls = live_calls
        self._dispatch = dispatch
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.open_timeout, self.ping_interval = open_timeout, ping_interval
        self.connected = False
        self.connects = 0  # successful connections so far (tests and logs)
        self.commands = 0
        self._ws = None

    async def run(self) -> None:
        backoff = self.min_backoff
        failures = 0
        while True:
            try:
                async with connect(self.url, additional_headers=self._headers, open_timeout=self.open_timeout,
                                   ping_interval=self.ping_interval, ping_timeout=self.ping_interval,
                                   close_timeout=1.0, proxy=None) as ws:
                    self._ws = ws
                    hello = WorkerHello(worker=self.worker, calls=self._live_calls())
                    await ws.send(hello.model_dump_json())
                    self.connected = True
                    self.connects += 1
                    log.info("hub_link_up", url=self.url, calls=len(hello.calls), after_failures=failures)
                    backoff, failures = self.min_backoff, 0
                    async for msg in ws:
                        self._handle(msg)
                    log.warning("hub_link_closed", code=ws.close_code, reason=ws.close_reason)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.WebSocketException) as e:
                failures += 1
                # every failure at first, then once a minute or so: a hub without the socket is not a flood
                level = log.warning if failures <= 3 or failures % 12 == 0 else log.debug
                level("hub_link_failed", url=self.url, error=str(e) or type(e).__name__, failures=failures)
            except Exception:
                failures += 1
                log.exception("hub_link_error", url=self.url)
            finally:
                self.connected = False
                self._ws = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _handle(self, msg: str | bytes) -> None:
        try:
            env = CommandEnvelope.model_validate(json.loads(msg))
        except (ValueError, ValidationError) as e:  # JSONDecodeError is a ValueError
            log.warning("hub_command_invalid", error=str(e)[:300], message=str(msg)[:200])
            return
        self.commands += 1
        try:
            self._dispatch(env.command)
        except Exception:
            log.exception("hub_command_failed", type=env.command.type, call_id=env.command.call_id)

    async def close(self) -> None:
        ws = self._ws
        if ws is not None:
            await ws.close()
