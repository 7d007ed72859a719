"""Questions from a call to the hub's knowledge-base matcher (``POST /internal/kb/match``).

The request and the reply are the shared models of ivr/hub_api.py (the hub parses with the same ones). Fields
a newer hub adds are ignored, fields an older hub lacks take their defaults (no ``offered``/``choices``: a
confirm offers its own entry).
"""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from ivr.http_pool import client
from ivr.hub_api import MAX_QUERY, KbMatch, KbMatchRequest, MenuSpec


class KbUnavailable(Exception):
    pass


async def kb_match(hub_url: str, token: str, text: str, *, menu: MenuSpec | None = None,
                   asr_confidence: float | None = None, timeout: float = 3.0) -> KbMatch:
    request = KbMatchRequest(text=text[:MAX_QUERY], menu=menu, asr_confidence=asr_confidence)
    # menu and confidence only when there are some: a hub from before menu ranking refuses unknown fields
    body = request.model_dump(exclude_none=True)
    url, headers = f"{hub_url.rstrip('/')}/internal/kb/match", {"Authorization": f"Bearer {token}"}
    try:
        http = client()
        r = await http.post(url, json=body, headers=headers, timeout=timeout)
        if r.status_code == 422 and len(body) > 1:  # a hub from before menu ranking refuses the new fields:
            r = await http.post(url, json={"text": body["text"]}, headers=headers, timeout=timeout)  # the question
    except httpx.HTTPError as e:
        raise KbUnavailable(f"hub unreachable: {e}") from None
    if r.status_code != 200:
        raise KbUnavailable(f"hub answered {r.status_code}: {r.text[:200]}")
    try:
        return KbMatch.model_validate_json(r.content)
    except ValidationError as e:
        raise KbUnavailable(f"hub's match reply is malformed: {str(e)[:200]}") from None
