"""The worker <-> hub requests and replies beside the event contract (ivr/contract.py): the knowledge-base match
(``POST /internal/kb/match``) and the case desk (``POST /internal/cases/lookup`` and ``/verify``).

Both sides parse with these models: the hub's route handlers take the requests and answer with the replies
(agent_console/kb_match.py, agent_console/cases/), the worker builds the requests and validates the replies
(ivr/hub_client.py, ivr/cases_client.py). Replies ignore fields a newer hub adds; fields an older hub lacks
take their defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_QUERY = 500  # the longest question the match takes (characters)
OPTION_PREFIX = "option:"  # how the matcher names a menu option among entry ids
SECRET_MAX = 32  # the longest case secret (court_cases.system.SECRET_MAX; tests/test_hub_api.py keeps them equal)


# ---- /internal/kb/match ---------------------------------------------------------------------------------------
class MenuOption(BaseModel):
    """One keypad choice of a menu as the matcher sees it: its key, a short title and example phrases."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=8)
    title: str = Field(min_length=1, max_length=32)
    phrases: list[str] = Field(default_factory=list, max_length=100)


class MenuSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    options: list[MenuOption] = Field(default_factory=list, max_length=20)


class KbMatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_QUERY, description="what the caller said")
    menu: MenuSpec | None = Field(None, description="the menu the caller is at; its options compete with the entries")
    asr_confidence: float | None = Field(None, ge=0, le=1)


class KbChoice(BaseModel):
    """One offered item (an entry or ``option:<key>``) with its short spoken title."""

    model_config = ConfigDict(extra="ignore")

    id: str
    title: str
    answer_text: str | None = Field(None, description="None for a menu option")

    @property
    def option(self) -> str | None:
        return self.id[len(OPTION_PREFIX):] if self.id.startswith(OPTION_PREFIX) else None


class KbMatch(BaseModel):
    """The hub matcher's decision for one question, with what the IVR speaks."""

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
    choices: list[KbChoice] = Field(default_factory=list, description="the offered ids in spoken order")

    def offered_ids(self) -> list[str]:
        """What the caller is offered in spoken order (an older hub sends no ``offered``: its confirm offers
        ``faq_id``)."""
        if self.offered:
            return list(self.offered)
        return [self.faq_id] if self.decision == "confirm" and self.faq_id else []


# ---- /internal/cases ------------------------------------------------------------------------------------------
class CaseBrief(BaseModel):
    """What a worker needs after verification (menus 3 and 4): no party names."""

    case_number: str
    stage: str
    stage_name: str
    judge: str
    clerk: str
    department: str
    judge_team_line: str | None


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=100, description="keypad digits (2023*440305*1*1234#), "
                                                                  "a lookup number, or the number as said")
    caller: str = Field("", max_length=64, description="calling number (with ticket)")
    ticket: str | None = Field(None, max_length=400, description="from a successful verify of this call")


class LookupReply(BaseModel):
    result: Literal["found", "not_found", "invalid", "unavailable"]
    kind: Literal["case", "lookup"] | None = None
    number: str | None = Field(None, description="the normalised input: canonical case number or lookup digits")
    case_number: str | None = Field(None, description="canonical case number (also for a lookup number)")
    readback: str | None = Field(None, description="confirmation to speak: 您输入的案号是……")
    verified: bool = False
    status: str | None = Field(None, description="the status sentence; only with a valid ticket")
    status_parts: list[str] = Field(default_factory=list, description="the status as its sentences, to render "
                                                                      "and play one after the other")
    case: CaseBrief | None = None
    say: str = Field(description="what to speak now: the status (verified), else the read-back or an apology")


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=100)
    secret: str = Field(min_length=1, max_length=SECRET_MAX, description="查询密码 or the last 6 of an ID number "
                                                                         "(keypad * = X)")
    caller: str = Field("", max_length=64, description="calling number; '' when withheld")
    call_id: str | None = Field(None, max_length=128)


class VerifyReply(BaseModel):
    result: Literal["ok", "wrong", "locked", "unavailable", "invalid"]
    case_number: str | None = None
    tries_left: int = 0
    ticket: str | None = Field(None, description="pass to /internal/cases/lookup for the rest of the call")
    status: str | None = Field(None, description="the status sentence (result ok)")
    status_parts: list[str] = Field(default_factory=list, description="the status as its sentences")
    case: CaseBrief | None = None
    say: str
