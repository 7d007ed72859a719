"""Case self-service questions from a call to the hub (``/internal/cases/lookup`` and ``/verify``).

The hub answers with JSON (``agent_console/cases/desk.py``: ``LookupReply`` / ``VerifyReply``); ``say`` is
always the sentence to speak. A hub that cannot be reached or answers with an error raises
:class:`CasesUnreachable`, which the IVR treats like an unavailable case system. Nothing here logs the
secret; the caller's number is sent so the hub can count failures per caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

TIMEOUT_S = 8.0  # the hub's own case-system timeout is 3 s with retries; verification runs scrypt


class CasesUnreachable(Exception):
    pass


@dataclass
class VerifiedCase:
    """The case this call passed the check for (held on the call's FlowContext for the rest of the call)."""

    case_number: str
    ticket: str
    status_parts: list[str] = field(default_factory=list)
    brief: dict[str, Any] = field(default_factory=dict)  # CaseBrief: judge, department, judge_team_line …


_USER_RE = re.compile(r"sips?:([^@;>]+)@")


def caller_number(remote_uri: str | None) -> str:
    """The calling number from a SIP URI (``"x" <sip:13800138000@host>`` → 13800138000); '' when withheld."""
    if not remote_uri:
        return ""
    m = _USER_RE.search(remote_uri)
    user = m.group(1) if m else ""
    return "" if user.lower() in ("anonymous", "unknown", "restricted") else user[:64]


async def _post(hub_url: str, token: str, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.post(f"{hub_url.rstrip('/')}/internal/cases/{path}", json=body,
                                  headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as e:
        raise CasesUnreachable(f"hub unreachable: {type(e).__name__}") from None
    if r.status_code != 200:
        raise CasesUnreachable(f"hub answered {r.status_code}")
    try:
        data = r.json()
    except ValueError:
        raise CasesUnreachable("hub answered with something that is not JSON") from None
    if not isinstance(data, dict) or "result" not in data:
        raise CasesUnreachable("hub answered without a result")
    return data


async def lookup(hub_url: str, token: str, number: str, caller: str = "", ticket: str | None = None,
                 timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """``LookupReply``: result found | not_found | invalid | unavailable; with a ticket, the status too."""
    body: dict[str, Any] = {"number": number[:100], "caller": caller[:64]}
    if ticket:
        body["ticket"] = ticket
    return await _post(hub_url, token, "lookup", body, timeout)


async def verify(hub_url: str, token: str, number: str, secret: str, caller: str = "", call_id: str | None = None,
                 timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """``VerifyReply``: result ok (ticket, status_parts, case) | wrong (tries_left) | locked | unavailable | invalid."""
    body: dict[str, Any] = {"number": number[:100], "secret": secret[:32], "caller": caller[:64]}
    if call_id:
        body["call_id"] = call_id[:128]
    return await _post(hub_url, token, "verify", body, timeout)
