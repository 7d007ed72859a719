"""``POST /api/kb/match {"text"}`` (the console's 试一试) and ``POST /internal/kb/match`` for IVR workers.

Both use the hub's live matcher (``app.state.kb_matcher``), which follows the database, so an edit
answers the next question without a restart. The internal route also returns the answer text and the
question (for "您是想问……吗"), with the court's details filled in.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from agent_console.calls.internal import require_worker
from agent_console.deps import require_role
from knowledge_base.matcher import MatchResult

router = APIRouter(prefix="/api/kb", tags=["kb"])
internal_router = APIRouter(prefix="/internal/kb", tags=["internal"], include_in_schema=False)


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=500, description="the question as the caller said it")


class IvrMatch(MatchResult):
    answer_text: str | None = None
    question_text: str | None = None


@router.post("/match", response_model=MatchResult,
             dependencies=[Depends(require_role("operator", "supervisor", "admin"))])
def match(req: MatchRequest, request: Request) -> MatchResult:
    return request.app.state.kb_matcher.match(req.text)


@internal_router.post("/match", response_model=IvrMatch, dependencies=[Depends(require_worker)])
def ivr_match(req: MatchRequest, request: Request) -> IvrMatch:
    live = request.app.state.kb_matcher
    r = live.match(req.text)
    extra = {"answer_text": live.answer_text(r.faq_id), "question_text": live.question_text(r.faq_id)} \
        if r.faq_id else {}
    return IvrMatch(**r.model_dump(), **extra)
