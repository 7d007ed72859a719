from __future__ import annotations

from pydantic import Field

from ivr.flow.outcomes import Goto
from ivr.flow.outcomes import Hangup as HangupOutcome
from ivr.kb_dialog import AnswerOptions, answer_dialog
from ivr.kb_phrases import DIALOG_PROMPTS
from ivr.verbs.base import Verb


class KbAnswer(Verb):
    """Answer the caller's question from the knowledge base, or hand over to staff.

    The hub's matcher decides: ``answer`` speaks the FAQ answer, then "解决了请按1，转人工请按0";
    ``confirm`` first asks "您是想问……吗" (1 or 是 = yes, 2 or 不是 = no → staff); ``clarify`` lists two or
    three entries by their titles ("您是想问：一，…；二，…？请说序号或按键": 1-3 said or pressed, 0 or 都不是 →
    staff); ``handoff`` (or no voice, no hub, an unclear reply) goes to ``on_handoff``. A caller who presses 1
    after an answer is settled at once. See ivr/kb_dialog.py.
    """

    name = "kb_answer"
    shorthand = "question"

    question: str = Field("{question}", description="the caller's words, usually from a listen verb")
    on_handoff: str
    goodbye_prompt: str | None = "goodbye"
    key_timeout_s: float = Field(6.0, gt=0, le=30)
    listen: bool = Field(True, description="spoken replies to a confirm or a list, when the speech service is there")

    def node_refs(self) -> list[str]:
        return [self.on_handoff]

    def prompt_refs(self) -> list[str]:
        return [*DIALOG_PROMPTS, *([self.goodbye_prompt] if self.goodbye_prompt else [])]

    async def run(self, ctx):
        options = AnswerOptions(question=self.question, key_timeout_s=self.key_timeout_s, listen=self.listen)
        outcome = await answer_dialog(ctx, options)
        if outcome == "settled":
            if self.goodbye_prompt:
                await ctx.play(self.goodbye_prompt, barge_in=False)
            return HangupOutcome("answered_by_kb")
        return Goto(self.on_handoff)
