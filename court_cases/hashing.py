"""Verification secrets as salted scrypt hashes: the demo store never keeps a 查询密码 or ID digits in clear.

Every case has its own random salt; its 查询密码 and each party's last 6 ID characters are hashed with it, so
checking what a caller typed costs one scrypt however many secrets the case has (~27 ms at n=2^14 on one
core; ``hashlib.scrypt`` releases the GIL, so an import hashes on several threads). A hash records its
parameters (``scrypt$14$8$1$<base64>``), so they can be raised later without breaking stored hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable

LOG2_N, R, P = 14, 8, 1
DKLEN = 32
SALT_BYTES = 16
_MAXMEM = 64 * 1024 * 1024


def new_salt() -> str:
    return base64.b64encode(os.urandom(SALT_BYTES)).decode("ascii")


def _derive(secret: str, salt: str, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=base64.b64decode(salt), n=1 << log2_n, r=r, p=p,
                          maxmem=_MAXMEM, dklen=DKLEN)


def hash_secret(secret: str, salt: str) -> str:
    """The stored form of ``secret`` (already normalised) under the case's ``salt``."""
    digest = _derive(secret, salt, LOG2_N, R, P)
    return f"scrypt${LOG2_N}${R}${P}${base64.b64encode(digest).decode('ascii')}"


def _params(stored: str) -> tuple[int, int, int, bytes] | None:
    try:
        kind, n, r, p, digest = stored.split("$")
        if kind != "scrypt":
            return None
        return int(n), int(r), int(p), base64.b64decode(digest)
    except (ValueError, TypeError):
        return None


def matches(secret: str, salt: str, stored: Iterable[str]) -> bool:
    """True when ``secret`` hashes to one of ``stored`` (one scrypt per parameter set, constant-time compares)."""
    derived: dict[tuple[int, int, int], bytes] = {}
    found = False
    for s in stored:
        parsed = _params(s)
        if parsed is None:
            continue
        n, r, p, digest = parsed
        key = (n, r, p)
        if key not in derived:
            derived[key] = _derive(secret, salt, n, r, p)
        found |= hmac.compare_digest(derived[key], digest)
    return found
