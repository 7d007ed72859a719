from __future__ import annotations

from pydantic import model_validator

from ivr.case_dialog import CaseStatusOptions, status_dialog
from ivr.verbs.base import DIGITS, Verb


class CaseStatus(Verb, CaseStatusOptions):
    """Speak the checked case's status sentence by sentence (each rendered while the one before plays), then
    "重听请按星号键，联系法官请按3，人工服务请按0": ``*`` speaks it again (fetched anew with the check's ticket),
    3 goes to ``on_judge`` for this case without a second check, 0 to ``on_operator``. A key stops the status.
    Without a checked case the flow goes to ``on_operator``.
    """

    name = "case_status"

    @model_validator(mode="after")
    def _keys(self):
        keys = (self.replay_key, self.judge_key, self.operator_key)
        if any(len(k) != 1 or k not in DIGITS for k in keys) or len(set(keys)) != 3:
            raise ValueError("replay_key, judge_key and operator_key must be three different keypad keys")
        return self

    def node_refs(self) -> list[str]:
        return [self.on_judge, self.on_operator]

    def prompt_refs(self) -> list[str]:
        named = (self.menu_prompt, self.no_voice_prompt, self.goodbye_prompt, self.invalid_prompt,
                 self.no_input_prompt)
        return [p for p in named if p]

    async def run(self, ctx):
        return await status_dialog(ctx, self)
