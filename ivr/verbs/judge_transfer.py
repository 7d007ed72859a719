from __future__ import annotations

from ivr.judge_call import JudgeTransferOptions, transfer_to_judge
from ivr.verbs.base import Verb


class JudgeTransfer(Verb, JudgeTransferOptions):
    """Connect the caller to the checked case's judge's team line (``judge_team_line``) during working hours.

    The worker calls the line itself and joins the two calls (the operator-leg bridge, ivr/bridge.py); the
    caller hears hold music while it rings. A bare extension is dialed at ``domain``. With no line, after
    hours, or when nobody answers within ``ring_timeout_s``, the flow goes on with the next verb (the
    message); once connected the call ends when either side hangs up.
    """

    name = "judge_transfer"

    def prompt_refs(self) -> list[str]:
        return [p for p in (self.prompt, self.no_answer_prompt, self.hold_music) if p]

    async def run(self, ctx):
        return await transfer_to_judge(ctx, self)
