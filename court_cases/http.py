"""The court's own case system over HTTP (``cases.backend = "http"``).

Contract (JSON, UTF-8; every request carries ``Authorization: Bearer <cases.token>``):

``GET {base}/cases/{number}``
    ``{number}`` is the canonical case number, URL-encoded (（2023）粤0305民初1234号 →
    ``%EF%BC%882023%EF%BC%89%E7%B2%A40305%E6%B0%91%E5%88%9D1234%E5%8F%B7``), or a lookup number (digits).
    ``200`` with a :class:`~court_cases.case.CaseInfo` object::

        {"case_number": "（2023）粤0305民初1234号", "lookup_number": "20231234", "cause": "民间借贷纠纷",
         "parties": [{"name": "张三", "role": "原告"}, {"name": "李四", "role": "被告"}],
         "stage": "in_trial", "next_hearing": {"at": "2027-03-05T09:30:00+08:00", "place": "第三法庭"},
         "judge": "王明", "clerk": "李华", "department": "民一庭", "judge_team_line": "sip:8101@pbx.court",
         "enforcement_status": null, "refund_status": null, "updated_at": "2027-02-20T16:00:00+08:00"}

    (``stage``: filed, in_trial, heard, judged, enforcement, suspended, closed or the Chinese name; unknown
    keys are ignored; times without an offset are the court's time zone), ``404`` when there is no such case.
``POST {base}/cases/{number}/verify`` with ``{"secret": "123456"}``
    ``200 {"ok": true|false}``; ``404`` = no such case (treated as not verified). The secret is the
    查询密码 or the last 6 characters of a party's ID number, upper case, keypad ``*`` already turned into X.

Anything else — a connection error, a timeout, a 5xx, another status, a body that is not that JSON — is
:class:`~court_cases.system.CaseSystemUnavailable`, logged on one line with the masked case number (never a
name, a secret or ID digits). GETs are repeated ``retries`` times after a connection error or a 5xx, with a
backoff of ``retry_backoff_s`` doubling each time; a read timeout is not repeated (the caller is waiting),
and a verification POST is never repeated.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from court_cases.case import DEFAULT_TZ, CaseInfo
from court_cases.numbers import normalise
from court_cases.privacy import mask_number
from court_cases.system import CaseSystemUnavailable, normalise_secret

log = logging.getLogger(__name__)


class HttpCaseSystem:
    """:class:`~court_cases.system.CaseSystem` over the contract above (thread-safe; one connection pool)."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 3.0, retries: int = 2,
                 retry_backoff_s: float = 0.2, tz: str = DEFAULT_TZ, transport: httpx.BaseTransport | None = None,
                 ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "hotline12368-cases"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.tz = tz
        #: HTTP requests sent (attempts, retries included), for tests and metrics
        self.requests = 0
        self._client = httpx.Client(base_url=self.base_url + "/", headers=headers, timeout=httpx.Timeout(timeout_s),
                                    transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def _path(self, value: str) -> str:
        return "cases/" + quote(value, safe="")

    def _unavailable(self, what: str, shown: str, reason: str, started: float, attempts: int) -> CaseSystemUnavailable:
        took = time.monotonic() - started
        log.error("case system unavailable: %s %s: %s (%d attempt%s, %.2f s)", what, shown, reason, attempts,
                  "" if attempts == 1 else "s", took)
        return CaseSystemUnavailable(f"{what}: {reason}")

    def _send(self, method: str, path: str, shown: str, body: dict[str, Any] | None = None) -> httpx.Response:
        started = time.monotonic()
        attempts = 1 + (self.retries if method == "GET" else 0)
        reason = ""
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                time.sleep(self.retry_backoff_s * 2 ** (attempt - 2))
            self.requests += 1
            try:
                r = self._client.request(method, path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                reason = f"cannot connect ({type(e).__name__})"
                continue
            except httpx.TimeoutException as e:
                raise self._unavailable(method, shown, f"timeout ({type(e).__name__})", started, attempt) from None
            except httpx.HTTPError as e:
                raise self._unavailable(method, shown, f"{type(e).__name__}", started, attempt) from None
            if r.status_code >= 500:
                reason = f"HTTP {r.status_code}"
                continue
            return r
        raise self._unavailable(method, shown, reason, started, attempts)

    def get_case(self, case_number: str) -> CaseInfo | None:
        ref = normalise(case_number)
        if ref is None:
            return None
        shown = mask_number(ref.value)
        r = self._send("GET", self._path(ref.value), shown)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self._unavailable("GET", shown, f"HTTP {r.status_code}", time.monotonic(), 1)
        try:
            return CaseInfo.model_validate(r.json(), context={"tz": self.tz})
        except ValueError as e:  # JSONDecodeError and ValidationError are ValueErrors
            kind = "invalid case JSON" if isinstance(e, ValidationError) else "not JSON"
            raise self._unavailable("GET", shown, kind, time.monotonic(), 1) from None

    def verify(self, case_number: str, secret: str) -> bool:
        ref = normalise(case_number)
        typed = normalise_secret(secret)
        if ref is None or not typed:
            return False
        shown = mask_number(ref.value)
        r = self._send("POST", self._path(ref.value) + "/verify", shown, {"secret": typed})
        if r.status_code == 404:
            return False
        if r.status_code != 200:
            raise self._unavailable("POST", shown, f"HTTP {r.status_code}", time.monotonic(), 1)
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
            raise self._unavailable("POST", shown, "invalid verify JSON", time.monotonic(), 1)
        return doc["ok"]
