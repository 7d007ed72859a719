"""Writes to Redis that must arrive in order and must not block their caller while Redis is away (issue 17)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)


class OrderedSender:
    """Each write is a function of the client; writes go out in the order they were queued. While Redis does not
    answer they wait here, and the owner's loop calls :meth:`flush` (about every second) until it answers again."""

    def __init__(self, client: redis.Redis):
        self._redis = client
        self._unsent: deque[Callable[[redis.Redis], Any]] = deque()
        self._lock = threading.Lock()
        self.down = False

    @property
    def pending(self) -> bool:
        return bool(self._unsent)

    def send(self, write: Callable[[redis.Redis], Any]) -> None:
        with self._lock:
            self._unsent.append(write)
        if not self.down:  # while Redis is away the owner's loop retries: no caller waits for a timeout
            self.flush()

    def flush(self) -> bool:
        """Send what waits, in order; False while Redis does not answer (it stays queued)."""
        with self._lock:
            while self._unsent:
                try:
                    self._unsent[0](self._redis)
                except redis.RedisError as e:
                    if not self.down:
                        log.warning("ops: Redis unreachable, %d write(s) wait: %s", len(self._unsent), e)
                    self.down = True
                    return False
                self._unsent.popleft()
        self.down = False
        return True
