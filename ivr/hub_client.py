"""Questions from a call to the hub's knowledge-base matcher (``POST /internal/kb/match``).

The reply is parsed into :class:`KbMatch`; fields a newer hub adds are ignored, fields an older hub lacks take
their defaults (no ``offered``/``choices``: a confirm offers its own entry).
"""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_QUERY = 500  # the hub's match request takes at most this many characters
OPTION_PREFIX = "option:"  # how the matcher names a menu option among entry ids


class KbUnavailable(Exception):
    pass


class MenuOption(BaseModel):
    """One keypad choice of a menu as the matcher sees it: its key, a short title and example phrases."""

    key: str
    title: str
    phrases: list[str] = Field(default_factory=list)


class MenuSpec(BaseModel):
    name: str
    options: list[MenuOption]


class KbChoice(BaseModel):
    """One offered item (an entry or ``option:<key>``) with its short spoken title."""

    model_config = ConfigDict(extra="ignore")

    id: str
    title: str
    answer_text: str | None = None

    @property
    def option(self) -> str | None:
        return self.id[len(OPTION_PREFIX):] if self.id.startswith(OPTION_PREFIX) else None


class KbMatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: str = ""
    decision: Literal["answer", "confirm", "clarify", "handoff"]
    faq_id: str | None = None
    score: float | None = None
    margin: float | None = None
    reason: str = ""
    offered: list[str] = Field(default_factory=list)
    option: str | None = Field(None, description="the menu option's key when an option won (decision answer)")
    probability: float | None = None
    answer_text: str | None = None
    question_text: str | None = None
    choices: list[KbChoice] = Field(default_factory=list)

    def offered_ids(self) -> list[str]:
        """What the caller is offered in spoken order (an older hub sends no ``offered``: its confirm offers
        ``faq_id``)."""
        if self.offered:
            return list(self.offered)
        return [self.faq_id] if self.decision == "confirm" and self.faq_id else []


async def kb_match(hub_url: str, token: str, text: str, *, menu: MenuSpec | None = None,
                   asr_confidence: float | None = None, timeout: float = 3.0) -> KbMatch:
    body: dict = {"text": text[:MAX_QUERY]}
    if menu is not None:  # only sent when asked for: a hub without menu ranking refuses unknown fields
        body["menu"] = menu.model_dump()
    if asr_confidence is not None:
        body["asr_confidence"] = asr_confidence
    url, headers = f"{hub_url.rstrip('/')}/internal/kb/match", {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.post(url, json=body, headers=headers)
            if r.status_code == 422 and len(body) > 1:  # a hub from before menu ranking refuses the new fields:
                r = await client.post(url, json={"text": body["text"]}, headers=headers)  # the question alone
    except httpx.HTTPError as e:
        raise KbUnavailable(f"hub unreachable: {e}") from None
    if r.status_code != 200:
        raise KbUnavailable(f"hub answered {r.status_code}: {r.text[:200]}")
    try:
        return KbMatch.model_validate_json(r.content)
    except ValidationError as e:
        raise KbUnavailable(f"hub's match reply is malformed: {str(e)[:200]}") from None
