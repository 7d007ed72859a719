"""Login throttling: after ``limit`` failed logins for one username (or ``address_limit`` from one
address: a court's operators often share one NAT address) within ``window_s``, further attempts are
refused with 429 until the window has passed — argon2 makes each
guess slow, this makes guessing a password by the thousand impossible. In memory, per hub process:
a restart forgets, which only ever lets a person back in sooner. Memory is bounded: at most ``max_keys``
usernames and addresses are remembered, the least recently failed forgotten first (a flood of made-up
usernames cannot grow the hub; it can only make the flooder's own address wait)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MSG_TOO_MANY = "登录失败次数过多，请{minutes}分钟后再试"


def user_key(username: str) -> str:
    return f"u:{username.lower()[:256]}"


class LoginThrottle:
    def __init__(self, limit: int = 5, address_limit: int = 30, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self.limit, self.address_limit, self.window_s, self.clock = limit, address_limit, window_s, clock
        self.max_keys = max_keys
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()  # nothing remembered (not stored: asking must not grow memory)
        while q and now - q[0] > self.window_s:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def __len__(self) -> int:
        return len(self._fails)

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until a login may be tried again (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [self.window_s - (now - q[-limit]) for key, limit in ((user_key(username), self.limit),
                                                                          (f"a:{address}", self.address_limit))
                     if len(q := self._recent(key, now)) >= limit]
        return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (user_key(username), f"a:{address}"):
                q = self._recent(key, now)
                q.append(now)
                self._fails[key] = q
                self._fails.move_to_end(key)
                while len(self._fails) > self.max_keys:
                    self._fails.popitem(last=False)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(user_key(username), None)
