"""One HTTP client per event loop for the worker's requests to the hub (knowledge base, case desk).

Creating an ``httpx.AsyncClient`` loads the CA bundle into a new SSL context: ~30 ms of CPU on an idle core, and
0.25 s measured on the shared 2-core machine under load — more than the knowledge base's decision itself. A
client kept for the loop also keeps the connection to the hub open between questions.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def client() -> httpx.AsyncClient:
    """This event loop's client (timeouts are given per request)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    if found is None or found.is_closed:
        found = _clients[loop] = httpx.AsyncClient(timeout=10.0)
    return found
