"""Case self-service questions from a call to the hub (``/internal/cases/lookup`` and ``/verify``).

Requests and replies are the shared models of ivr/hub_api.py (``LookupRequest``/``LookupReply``,
``VerifyRequest``/``VerifyReply``), which the hub parses with too; ``say`` is always the sentence to speak.
A hub that cannot be reached or answers with an error or a malformed reply raises :class:`CasesUnreachable`,
which the IVR treats like an unavailable case system. Nothing here logs the secret; the caller's number is
sent so the hub can count failures per caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ivr.http_pool import client
from ivr.hub_api import SECRET_MAX, LookupReply, LookupRequest, VerifyReply, VerifyRequest

R = TypeVar("R", LookupReply, VerifyReply)
Q = TypeVar("Q", LookupRequest, VerifyRequest)
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


async def _post(hub_url: str, token: str, path: str, request: BaseModel, reply: type[R], timeout: float) -> R:
    try:
        r = await client().post(f"{hub_url.rstrip('/')}/internal/cases/{path}",
                                json=request.model_dump(exclude_none=True),
                                headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError as e:
        raise CasesUnreachable(f"hub unreachable: {type(e).__name__}") from None
    if r.status_code != 200:
        raise CasesUnreachable(f"hub answered {r.status_code}")
    try:
        return reply.model_validate_json(r.content)
    except ValidationError:
        raise CasesUnreachable("hub answered with something that is not a reply") from None


def _request(model: type[Q], **fields: Any) -> Q:
    """The request, or CasesUnreachable for one the hub would refuse (an empty number or secret): as before,
    when the hub's 422 made it unreachable for this call."""
    try:
        return model(**fields)
    except ValidationError:
        raise CasesUnreachable("request the hub would refuse") from None


async def lookup(hub_url: str, token: str, number: str, caller: str = "", ticket: str | None = None,
                 timeout: float = TIMEOUT_S) -> LookupReply:
    """result found | not_found | invalid | unavailable; with a ticket, the status too."""
    request = _request(LookupRequest, number=number[:100], caller=caller[:64], ticket=ticket or None)
    return await _post(hub_url, token, "lookup", request, LookupReply, timeout)


async def verify(hub_url: str, token: str, number: str, secret: str, caller: str = "", call_id: str | None = None,
                 timeout: float = TIMEOUT_S) -> VerifyReply:
    """result ok (ticket, status_parts, case) | wrong (tries_left) | locked | unavailable | invalid."""
    request = _request(VerifyRequest, number=number[:100], secret=secret[:SECRET_MAX], caller=caller[:64],
                       call_id=call_id[:128] if call_id else None)
    return await _post(hub_url, token, "verify", request, VerifyReply, timeout)
