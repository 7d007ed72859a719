"""Rate limits shared by several hubs (issue 17): sliding windows in Redis sorted sets, one per key.

With ``redis.url`` set, the login throttle, the web form's submissions and the order-tracking lookups count across
every hub behind the load balancer (a flooder cannot multiply its tries by the number of hubs); without it each hub
counts in its own memory (``agent_console.auth.throttle``, ``agent_console.work_orders.intake.RateLimit``). Keys
expire with their window, so nobody's tries are kept for longer than they count.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from agent_console.auth.throttle import user_key

log = logging.getLogger(__name__)

# KEYS[1] the window; ARGV now, window_s, limit, add (1: count this try when allowed, 2: count it anyway), member.
# Returns the seconds to wait (0: allowed), as a string (Lua numbers become integers on the way out).
_WINDOW = """
local now, window, limit, add = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local wait = 0
if n >= limit then
  local first = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  wait = window - (now - tonumber(first[2]))
end
if add == 2 or (add == 1 and wait <= 0) then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
end
return tostring(wait)
"""


class SharedWindows:
    def __init__(self, client: redis.Redis, prefix: str, clock: Callable[[], float] = time.time):
        self._client, self._prefix, self._clock = client, prefix, clock
        self._script = client.register_script(_WINDOW)

    def check(self, key: str, limit: int, window_s: float, add: int = 0) -> float:
        """Seconds until ``key`` may try again (0: now); ``add`` 1 counts this try if allowed, 2 counts it anyway."""
        try:
            wait = self._script(keys=[f"{self._prefix}rl:{key}"],
                                args=[self._clock(), window_s, limit, add, uuid.uuid4().hex])
        except redis.RedisError as e:  # open while Redis is away: argon2 still makes each login guess slow
            log.warning("rate limits: Redis unreachable, %s not counted: %s", key.split(":")[0], e)
            return 0.0
        return max(0.0, float(wait))

    def clear(self, key: str) -> None:
        try:
            self._client.delete(f"{self._prefix}rl:{key}")
        except redis.RedisError as e:
            log.warning("rate limits: Redis unreachable, %s not cleared: %s", key.split(":")[0], e)


class SharedRateLimit:
    """:class:`~agent_console.work_orders.intake.RateLimit`'s interface: ``limit`` per address in ``window_s``."""

    def __init__(self, windows: SharedWindows, name: str, limit: int, window_s: float = 3600.0):
        self._w, self._name, self.limit, self.window_s = windows, name, limit, window_s

    def wait(self, address: str) -> float:
        return self._w.check(f"{self._name}:{address}", self.limit, self.window_s)

    def take(self, address: str) -> float:
        return self._w.check(f"{self._name}:{address}", self.limit, self.window_s, add=1)


class SharedLoginThrottle:
    """:class:`~agent_console.auth.throttle.LoginThrottle`'s interface, counted across hubs."""

    def __init__(self, windows: SharedWindows, limit: int = 5, address_limit: int = 30, window_s: float = 300.0):
        self._w, self.limit, self.address_limit, self.window_s = windows, limit, address_limit, window_s

    def _keys(self, username: str, address: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (f"login:{user_key(username)}", self.limit), (f"login:a:{address}", self.address_limit)

    def retry_after(self, username: str, address: str) -> float:
        return max(self._w.check(key, limit, self.window_s) for key, limit in self._keys(username, address))

    def failed(self, username: str, address: str) -> None:
        for key, limit in self._keys(username, address):
            self._w.check(key, limit, self.window_s, add=2)

    def succeeded(self, username: str) -> None:
        self._w.clear(f"login:{user_key(username)}")


def shared_windows(state: Any) -> SharedWindows | None:
    """The app's shared windows when it has a Redis (``app.state.redis``), else None."""
    client = getattr(state, "redis", None)
    if client is None:
        return None
    if getattr(state, "shared_windows", None) is None:
        state.shared_windows = SharedWindows(client, getattr(state, "redis_prefix", "hotline:"))
    return state.shared_windows
