"""``POST /api/kb/match {"text"}`` (the console's 试一试) and ``POST /internal/kb/match`` for IVR workers.

Both use the hub's live matcher (``app.state.kb_matcher``), which follows the database, so an edit
answers the next question without a restart. The internal route takes the menu the caller is at (its
options are ranked with the entries) and the recognizer's confidence, and also returns the answer text,
the question (for "您是想问……吗") and, for each offered id in spoken order, its title and answer, with the
court's details filled in.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from agent_console.calls.internal import require_worker
from agent_console.deps import require_role
from ivr.hub_api import KbChoice, KbMatchRequest
from knowledge_base.matcher import OPTION_PREFIX, Intent, MatchResult

router = APIRouter(prefix="/api/kb", tags=["kb"])
internal_router = APIRouter(prefix="/internal/kb", tags=["internal"], include_in_schema=False)


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=500, description="the question as the caller said it")


class IvrMatch(MatchResult):
    """The worker's ``KbMatch`` (ivr/hub_api.py) with the matcher's candidates (for the console's 试一试 and
    debugging; a worker ignores them). tests/test_hub_api.py checks that a worker parses it."""

    answer_text: str | None = None
    question_text: str | None = None
    choices: list[KbChoice] = Field(default_factory=list, description="the offered ids in spoken order")


@router.post("/match", response_model=MatchResult,
             dependencies=[Depends(require_role("operator", "supervisor", "admin"))])
def match(req: MatchRequest, request: Request) -> MatchResult:
    return request.app.state.kb_matcher.match(req.text)


@internal_router.post("/match", response_model=IvrMatch, dependencies=[Depends(require_worker)])
def ivr_match(req: KbMatchRequest, request: Request) -> IvrMatch:
    live = request.app.state.kb_matcher
    options = [Intent(**o.model_dump()) for o in req.menu.options] if req.menu else []
    r = live.match(req.text, intents=options or None, asr_confidence=req.asr_confidence)
    extra = {"answer_text": live.answer_text(r.faq_id), "question_text": live.question_text(r.faq_id)} \
        if r.faq_id else {}
    titles = {OPTION_PREFIX + o.key: o.title for o in options}
    choices = [KbChoice(id=i, title=titles.get(i, ""), answer_text=None) if i.startswith(OPTION_PREFIX)
               else KbChoice(id=i, title=live.title_text(i) or "", answer_text=live.answer_text(i)) for i in r.offered]
    return IvrMatch(**r.model_dump(), **extra, choices=choices)
