"""``POST /api/kb/match {"text"}``: the FAQ matcher's decision for a question (the console's "试一试").

Any console role (operator, supervisor, admin) may ask. For now the matcher is built once from the
shipped default knowledge base; it will follow the database-backed store once that is wired.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from agent_console.deps import require_role
from knowledge_base.matcher import Matcher, MatchResult, default_kb_path, load_entries
from knowledge_base.settings import MatcherSettings

router = APIRouter(prefix="/api/kb", tags=["kb"])


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=500, description="the question as the caller said it")


@lru_cache(maxsize=1)
def default_matcher() -> Matcher:
    return Matcher.build(load_entries(default_kb_path()), MatcherSettings())


@router.post("/match", response_model=MatchResult,
             dependencies=[Depends(require_role("operator", "supervisor", "admin"))])
def match(req: MatchRequest) -> MatchResult:
    return default_matcher().match(req.text)
