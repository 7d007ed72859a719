"""Login throttling: after ``limit`` failed logins for one username (or ``address_limit`` from one
address: a court's operators often share one NAT address) within ``window_s``, further attempts are
refused with 429 until the window has passed — argon2 makes each
guess slow, this makes guessing a password by the thousand impossible. In memory, per hub process:
a restart forgets, which only ever lets a person back in sooner."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MSG_TOO_MANY = "登录失败次数过多，请{minutes}分钟后再试"


class LoginThrottle:
    def __init__(self, limit: int = 5, address_limit: int = 30, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.address_limit, self.window_s, self.clock = limit, address_limit, window_s, clock
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until a login may be tried again (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [self.window_s - (now - q[-limit]) for key, limit in ((f"u:{username.lower()}", self.limit),
                                                                          (f"a:{address}", self.address_limit))
                     if len(q := self._recent(key, now)) >= limit]
            if len(self._fails) > 10_000:  # forget idle keys so a flood of names cannot grow memory
                for k in [k for k, q in self._fails.items() if not q]:
                    del self._fails[k]
        return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"u:{username.lower()}", f"a:{address}"):
                self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(f"u:{username.lower()}", None)
