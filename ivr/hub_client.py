"""Questions from a call to the hub's knowledge-base matcher (``POST /internal/kb/match``)."""

from __future__ import annotations

from typing import Any

import httpx


class KbUnavailable(Exception):
    pass


async def kb_match(hub_url: str, token: str, text: str, timeout: float = 3.0) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.post(f"{hub_url.rstrip('/')}/internal/kb/match", json={"text": text[:500]},
                                  headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as e:
        raise KbUnavailable(f"hub unreachable: {e}") from None
    if r.status_code != 200:
        raise KbUnavailable(f"hub answered {r.status_code}: {r.text[:200]}")
    return r.json()
