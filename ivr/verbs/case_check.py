from __future__ import annotations

from pydantic import Field

from ivr.verbs.base import Verb
from ivr.verbs.say import DIGIT_PROMPTS


class CaseCheck(Verb):
    """Find the caller's case and check who is calling (menus 1, 3 and 4; see ivr/case_dialog.py).

    The caller keys the case number (``YEAR*COURT*TYPE*SEQ#``, e.g. ``2026*440305*1*1234#``) or the lookup
    number on the court's notice (``26011234#``); the hub's read-back is spoken (1 confirm, 2 enter again);
    then the 查询密码 or the last 6 of a party's ID number (``*`` for X) ending in ``#``. The hub counts wrong
    secrets and locks (``on_locked``); a case system that cannot answer goes to ``on_unavailable`` after the
    hub's apology. A case already checked in this call is used again without asking (``reuse``; with
    ``reuse: false`` the number is asked for and only a different case needs the secret again).
    """

    name = "case_check"

    on_locked: str
    on_unavailable: str
    on_failure: str | None = Field(None, description="after too many wrong or missing entries (default: hang up)")
    reuse: bool = True
    number_prompt: str = "case_number_enter"
    secret_prompt: str = "case_secret_enter"
    confirm_prompt: str = "confirm_or_retry"
    readback_fallback: str | None = "you_entered"
    unavailable_prompt: str = "case_unavailable"
    locked_prompt: str = "case_locked"
    wrong_prompt: str = "case_wrong_secret"
    invalid_prompt: str | None = "invalid_input"
    no_input_prompt: str | None = "no_input"
    failure_prompt: str | None = "too_many_retries"
    attempts: int = Field(3, ge=1, le=10, description="case numbers the caller may enter (not found, re-enter)")
    max_secrets: int = Field(5, ge=1, le=20, description="a bound on secrets per check; the hub locks first")
    retries: int = Field(2, ge=0, le=5, description="extra prompts after silence or a malformed entry")
    timeout: float = Field(8.0, gt=0, le=60, description="seconds to wait for the first key")
    inter_digit_timeout: float = Field(5.0, gt=0, le=60)

    def node_refs(self) -> list[str]:
        return [self.on_locked, self.on_unavailable] + ([self.on_failure] if self.on_failure else [])

    def prompt_refs(self) -> list[str]:
        named = (self.number_prompt, self.secret_prompt, self.confirm_prompt, self.readback_fallback,
                 self.unavailable_prompt, self.locked_prompt, self.wrong_prompt, self.invalid_prompt,
                 self.no_input_prompt, self.failure_prompt)
        return [p for p in named if p] + sorted(set(DIGIT_PROMPTS.values()))

    async def run(self, ctx):
        from ivr.case_dialog import check_case

        return await check_case(ctx, self)
