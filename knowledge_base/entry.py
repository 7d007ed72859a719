"""One FAQ entry as admins write it and as import/export files carry it (the wire form)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge_base.title import TITLE_MAX, make_title

Category = Literal["consult", "query", "urge", "contact_judge", "complaint", "suggestion"]
CATEGORIES: tuple[str, ...] = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
CATEGORY_NAMES = {"consult": "咨询", "query": "查询", "urge": "催办", "contact_judge": "联络法官",
                  "complaint": "投诉信访", "suggestion": "意见建议"}


class FaqEntry(BaseModel):
    """Exactly the keys of the import/export format; extra keys are rejected."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", description="admin-chosen, e.g. F001")
    category: Category
    question: str = Field(min_length=2, max_length=200)
    variants: list[str] = Field(default_factory=list, max_length=100)
    answer: str = Field(min_length=2, max_length=2000, description="spoken text")
    keywords: list[str] = Field(default_factory=list, max_length=50)
    title: str | None = Field(None, min_length=2, max_length=TITLE_MAX, description=(
        "short spoken title for a clarifying question (诉讼费怎么交); made from the question when left out"))

    @field_validator("variants", "keywords")
    @classmethod
    def _no_blank_items(cls, v: list[str]) -> list[str]:
        items = [x.strip() for x in v]
        if any(not x for x in items):
            raise ValueError("list items must not be empty")
        return items

    @model_validator(mode="after")
    def _title(self) -> FaqEntry:
        if self.title is None:  # left out: made from the question, so a title is always there
            self.title = make_title(self.question)
        return self
