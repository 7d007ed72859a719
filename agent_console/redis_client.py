"""The Redis connection of a hub that shares its state with other hubs (``redis.url``, issue 17)."""

from __future__ import annotations

import redis

#: a hub must not hang on a Redis that went away: commands time out, the callers retry
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 1.0


class RedisUnavailable(Exception):
    """``redis.url`` is malformed or Redis does not answer; the message names the setting."""


def safe_redis_url(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    try:
        parsed = redis.connection.parse_url(url)
    except ValueError:
        return "(not a Redis URL)"
    host = parsed.get("host") or parsed.get("path", "")
    return f"redis://{host}:{parsed.get('port', 6379)}/{parsed.get('db', 0)}"


def connect_redis(url: str) -> redis.Redis:
    """A client for ``url`` that answered a PING; RedisUnavailable (naming ``redis.url``) otherwise."""
    where = f"redis.url (HOTLINE_REDIS__URL) {safe_redis_url(url)}"
    try:
        client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                      health_check_interval=30)
        client.ping()
    except ValueError as e:
        raise RedisUnavailable(f"{where}: {e}") from None
    except redis.RedisError as e:
        raise RedisUnavailable(f"{where}: Redis does not answer ({e})") from None
    return client
