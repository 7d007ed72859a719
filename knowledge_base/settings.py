"""Settings of the FAQ matcher (the ``[kb.matcher]`` section once wired into hotline settings).

Thresholds were tuned on the tuning half of ``tests/data/kb_eval.jsonl`` and checked on the held-out
half (``bench/kb_eval.py`` prints both). Raising ``answer_threshold`` / ``answer_margin`` trades
answered calls for fewer wrong answers; a wrong answer from a court is worse than a handoff.

Placeholders in answers of the default knowledge base (``knowledge_base/data/default_kb.json``),
filled by :func:`fill_placeholders` from :class:`CourtInfo`: ``{court_name}``, ``{office_address}``,
``{office_hours}``, ``{office_phone}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MatcherSettings(BaseModel):
    """How the matcher scores and when it answers, confirms, clarifies or hands off.

    With ``semantic`` (the default) the decision comes from the calibration file's probabilities and
    thresholds; the score thresholds and weights below are the lexical-only mode's (and the lexical
    score is one of the calibrated features).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    semantic: bool = Field(True, description=(
        "rank with sentence embeddings (multilingual-e5-small, loaded once per process) beside the lexical "
        "retrieval and decide with the calibrated probability; false: lexical retrieval and the score "
        "thresholds below only (no model needed; the keypad menus work either way)"))
    first_pass_min_texts: int = Field(20_000, ge=0, description=(
        "from this many FAQ texts on, cosines are first taken in a 96-dimensional subspace and only the best "
        "2,000 texts rescored exactly (knowledge_base/first_pass.py); below it every cosine is exact"))
    calibration_file: str = Field("", description=(
        "the fitted decision model (JSON from bench/kb_calibrate.py); empty: the one shipped in the package"))
    answer_threshold: float = Field(0.60, ge=0, le=1.5, description=(
        "answer directly when the best entry scores at least this (and the margin holds)"))
    answer_margin: float = Field(0.10, ge=0, le=1, description=(
        "... and leads the runner-up entry by at least this much; otherwise confirm"))
    confirm_threshold: float = Field(0.33, ge=0, le=1.5, description=(
        "below this best score the question is out of scope: hand off; between this and the answer "
        "threshold ask \"您是想问……吗？\""))
    min_query_chars: int = Field(2, ge=1, le=20, description=(
        "queries shorter than this after normalisation (fillers removed) are handed off as too short"))
    vague_doc_share: float = Field(0.04, ge=0, le=1, description=(
        "a query each of whose sound pairs occurs in more than this share of the FAQ texts says nothing "
        "specific (e.g. 我想咨询法院的事) and is handed off as vague"))
    unknown_run: int = Field(2, ge=1, le=20, description=(
        "a query with this many consecutive sound pairs that no FAQ text contains holds a word the knowledge "
        "base has never seen (检察院, 水电费, 护照): lexical-only mode: never answered directly, at most confirmed; "
        "semantic mode: the share of such characters is one of the calibrated features"))
    top_k: int = Field(12, ge=1, le=500, description="entries retrieved by BM25 and re-scored")
    candidates_shown: int = Field(5, ge=1, le=50, description="candidates listed in a result")
    fuzzy_pinyin: bool = Field(True, description=(
        "treat zh/z, ch/c, sh/s, ing/in, eng/en as the same sound (absorbs recognizer and accent "
        "confusions such as 上述 for 上诉)"))
    fold_synonyms: bool = Field(True, description=(
        "lexical-only mode: fold colloquial wordings into the knowledge base's own (knowledge_base/data/synonyms.txt: "
        "告他 → 起诉, 啥 → 什么) in FAQ texts and queries (the semantic mode does not: the table was fitted to "
        "the old evaluation set and adds nothing measurable there)"))
    weight_coverage: float = Field(0.35, ge=0, le=2, description=(
        "weight of the share of the query's information (idf of its sound pairs) found in the entry's "
        "best-matching text"))
    weight_union: float = Field(0.30, ge=0, le=2, description=(
        "weight of the share of the query's information found anywhere in the entry (question and variants)"))
    weight_fuzzy: float = Field(0.25, ge=0, le=2, description=(
        "weight of the rapidfuzz WRatio of the sound codes (best text of the entry)"))
    weight_reverse: float = Field(0.10, ge=0, le=2, description=(
        "weight of the share of the best text's information the query covers"))
    keyword_boost: float = Field(0.04, ge=0, le=1, description="added per keyword of the entry heard in the query")
    keyword_boost_cap: float = Field(0.08, ge=0, le=1, description="most that keywords can add")

    @model_validator(mode="after")
    def _ordered(self) -> MatcherSettings:
        if self.confirm_threshold > self.answer_threshold:
            raise ValueError("confirm_threshold must not exceed answer_threshold")
        return self


class CourtInfo(BaseModel):
    """The court's own details that answers of the default knowledge base refer to."""

    model_config = ConfigDict(extra="forbid")

    court_name: str = Field("本院", description="spoken name of the court, e.g. 某某区人民法院")
    office_address: str = Field("请以法院公告为准", description="address of the litigation-service centre")
    office_hours: str = Field("工作日上午九点至十二点，下午一点半至五点半",
                              description="opening hours of the litigation-service centre, as spoken")
    office_phone: str = Field("请以法院公告为准", description="public phone number of the centre, as spoken")


PLACEHOLDERS = tuple(CourtInfo.model_fields)
_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def fill_placeholders(answer: str, info: CourtInfo | Mapping[str, str]) -> str:
    """Replace ``{court_name}`` etc.; unknown braces are left alone (answers are not format strings)."""
    values = info.model_dump() if isinstance(info, CourtInfo) else dict(info)
    return _PLACEHOLDER_RE.sub(lambda m: str(values.get(m.group(1), m.group(0))), answer)
