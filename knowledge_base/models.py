"""The knowledge base's tables. This package owns its own ``MetaData``; ``hotline.migrations`` combines them.

- ``kb_entries``: the current FAQ entries (the primary key is the admin's FAQ id), each with its text vectors
  for the semantic matcher (computed when saved, with the model's name);
- ``kb_history``: one row per change (create, update, enable, disable, delete, import) with who, when and the
  full before/after snapshots; ``(entry_id, version)`` is unique, versions keep counting across a delete and
  a re-create of the same id;
- ``kb_revision``: a single row whose counter goes up in the same transaction as every change, so running
  processes can poll one integer (:func:`knowledge_base.store.kb_stamp`) to see that the KB changed.

Lists and snapshots are JSON kept in text columns with the characters as they are (not ``\\uXXXX``), so the
same ``LIKE`` search works on SQLite and PostgreSQL and the database stays readable.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from knowledge_base.db_types import NAMING, UTCDateTime, utcnow
from knowledge_base.entry import CATEGORIES

HISTORY_ACTIONS = ("create", "update", "enable", "disable", "delete", "import")
ID_LEN = 32
WHO_LEN = 64
#: the primary key of the one row of ``kb_revision``
REVISION_ROW = 1

class JSONText(TypeDecorator[Any]):
    """JSON in a text column, written with ``ensure_ascii=False`` (Chinese stays searchable with LIKE)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class KbEntry(Base):
    __tablename__ = "kb_entries"
    __table_args__ = (CheckConstraint(f"category IN {CATEGORIES!r}", name="category"),)

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), index=True)
    question: Mapped[str] = mapped_column(Text)
    variants: Mapped[list[str]] = mapped_column(JSONText, default=list)
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(JSONText, default=list)
    #: short spoken title (never empty: made from the question when the admin leaves it out)
    title: Mapped[str] = mapped_column(String(16), default="")
    #: the vectors of the entry's texts (:func:`knowledge_base.embedding.pack`), computed when it is saved
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)
    #: the model that made ``embedding`` (:data:`knowledge_base.embedding.MODEL_NAME`); another → recomputed
    embedding_model: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(WHO_LEN), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbHistory(Base):
    """One change of one entry. ``before`` is None for a create, ``after`` None for a delete."""

    __tablename__ = "kb_history"
    __table_args__ = (
        CheckConstraint(f"action IN {HISTORY_ACTIONS!r}", name="action"),
        UniqueConstraint("entry_id", "version", name="uq_kb_history_entry_id_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    #: the entry's version after this change (for a delete: one past the deleted version)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    who: Mapped[str] = mapped_column(String(WHO_LEN))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONText, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONText, nullable=True)


class KbRevision(Base):
    """A single row (id 1): ``revision`` goes up by one with every committed change of the KB."""

    __tablename__ = "kb_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
