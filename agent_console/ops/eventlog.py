"""The hub-wide event log: one increasing ``seq`` for every event sent to browsers, the last N kept.

Each entry names its audience (roles and/or user ids) when it is appended, so a replay after a
reconnect shows a user exactly what the live stream would have shown. The masked form of an entry is
computed once, the first time a user who must not see personal data reads it.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agent_console.pii import mask_fields, sees_clear

DEFAULT_CAPACITY = 10_000


@dataclass
class Entry:
    seq: int
    roles: frozenset[str]
    users: frozenset[int]
    clear: dict[str, Any]
    _masked: dict[str, Any] | None = field(default=None, repr=False)

    def visible_to(self, user_id: int, role: str) -> bool:
        return role in self.roles or user_id in self.users

    def payload_for(self, role: str) -> dict[str, Any]:
        if sees_clear(role):
            return self.clear
        if self._masked is None:
            self._masked = mask_fields(self.clear)
        return self._masked


class Listeners:
    """Functions called (from any thread) after each change of a log."""

    def __init__(self) -> None:
        self._fns: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Add ``notify``; returns the unsubscribe function."""
        with self._lock:
            self._fns.append(notify)

        def unsubscribe() -> None:
            with self._lock:
                if notify in self._fns:
                    self._fns.remove(notify)

        return unsubscribe

    def notify_all(self) -> None:
        with self._lock:
            fns = list(self._fns)
        for notify in fns:
            notify()


class EventLog:
    """In this process (the embedded default); :class:`~agent_console.ops.shared_log.RedisEventLog` is the same log
    shared by several hubs."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        #: names this log's seqs: a browser whose cursor is from another epoch (a restarted hub) starts afresh
        self.epoch = uuid.uuid4().hex[:12]
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self._listeners = Listeners()

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def head_seq(self) -> int:
        """The last seq handed out (a snapshot's cursor)."""
        return self._seq

    def append(self, event: BaseModel, *, roles: frozenset[str] | set[str] = frozenset(),
               users: frozenset[int] | set[int] = frozenset()) -> Entry:
        with self._lock:
            self._seq += 1
            payload = event.model_dump(mode="json")
            payload["seq"] = self._seq
            entry = Entry(self._seq, frozenset(roles), frozenset(users), payload)
            self._entries.append(entry)
        self._listeners.notify_all()
        return entry

    def since(self, seq: int) -> list[Entry] | None:
        """Entries after ``seq`` (oldest first); None when some of them are no longer kept."""
        with self._lock:
            if seq > self._seq:
                return None
            first = self._entries[0].seq if self._entries else self._seq + 1
            if seq < first - 1:
                return None
            return list(itertools.islice(self._entries, seq - first + 1, None))

    def close(self) -> None:
        """Nothing to release (the shared log stops its thread)."""

    def subscribe(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``notify`` (from any thread) after each append; returns the unsubscribe function."""
        return self._listeners.subscribe(notify)


class NullLog:
    """An event log that keeps nothing (a quiet rebuild: the browsers saw it all)."""

    def append(self, event: BaseModel, **_: object) -> None:
        return None
