"""What the matcher takes and gives: a decision and its figures, candidates, menu options as intents, and
the protocol of the embedding model it needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["answer", "confirm", "clarify", "handoff"]
#: menu options ranked with the entries carry this id prefix (FAQ ids cannot contain ":")
OPTION_PREFIX = "option:"


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    faq_id: str
    score: float


class MatchResult(BaseModel):
    """What the matcher decided for one query, and why."""

    model_config = ConfigDict(frozen=True)

    query: str
    decision: Decision
    faq_id: str | None = Field(description="the entry to answer or confirm; None on handoff, clarify or when a "
                                           "menu option wins")
    score: float = Field(description="score of the best entry (0 when none); with the semantic matcher the "
                                     "re-ranker's score (a logit)")
    margin: float = Field(description="lead of the best entry over the runner-up entry")
    reason: str = Field(description="code and figures: confident, unsure, close, low_probability, low_score, "
                                    "low_margin, out_of_scope, vague, too_short, empty")
    candidates: list[Candidate] = Field(default_factory=list, description="best entries first")
    offered: list[str] = Field(default_factory=list, description=(
        "what the caller is offered, in spoken order: one id for confirm, 2-3 for clarify, [] for answer and "
        "handoff; menu options as option:<key>"))
    option: str | None = Field(None, description="the menu option's key when an option is answered")
    probability: float | None = Field(None, description="calibrated probability that the best entry is right "
                                                        "(None in lexical-only mode)")


@dataclass(frozen=True, slots=True)
class Scored:
    """The figures behind one candidate's lexical score (for benchmarks and debugging)."""

    faq_id: str
    score: float
    coverage: float
    union: float
    fuzzy: float
    reverse: float
    keywords: int


class QueryEmbedder(Protocol):
    """What the matcher needs of the embedding model (:class:`knowledge_base.embedding.Embedder`)."""

    name: str

    def query(self, text: str) -> np.ndarray: ...

    def passages(self, texts: list[str]) -> np.ndarray: ...


class Intent(BaseModel):
    """A menu option ranked with the entries: its key, its spoken title and example phrases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1, max_length=8)
    title: str = Field(min_length=1, max_length=32)
    phrases: list[str] = Field(default_factory=list, max_length=100)


@dataclass(frozen=True, slots=True)
class OptionEntry:
    """A menu option as the matcher indexes it (id option:<key>; its title stands in for an answer)."""

    id: str
    question: str
    variants: list[str]
    title: str
    keywords: tuple[str, ...] = ()
    answer: str = ""
