from __future__ import annotations

from ivr.case_dialog import CaseCheckOptions, check_case
from ivr.verbs.base import Verb
from ivr.verbs.say import DIGIT_PROMPTS


class CaseCheck(Verb, CaseCheckOptions):
    """Find the caller's case and check who is calling (menus 1, 3 and 4; see ivr/case_dialog.py).

    The caller keys the case number (``YEAR*COURT*TYPE*SEQ#``, e.g. ``2026*440305*1*1234#``) or the lookup
    number on the court's notice (``26011234#``); the hub's read-back is spoken (1 confirm, 2 enter again);
    then the 查询密码 or the last 6 of a party's ID number (``*`` for X) ending in ``#``. The hub counts wrong
    secrets and locks (``on_locked``); a case system that cannot answer goes to ``on_unavailable`` after the
    hub's apology. A case already checked in this call is used again without asking (``reuse``; with
    ``reuse: false`` the number is asked for and only a different case needs the secret again).
    """

    name = "case_check"

    def node_refs(self) -> list[str]:
        return [self.on_locked, self.on_unavailable] + ([self.on_failure] if self.on_failure else [])

    def prompt_refs(self) -> list[str]:
        named = (self.number_prompt, self.secret_prompt, self.confirm_prompt, self.readback_fallback,
                 self.unavailable_prompt, self.locked_prompt, self.wrong_prompt, self.invalid_prompt,
                 self.no_input_prompt, self.failure_prompt)
        return [p for p in named if p] + sorted(set(DIGIT_PROMPTS.values()))

    async def run(self, ctx):
        return await check_case(ctx, self)
