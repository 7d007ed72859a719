from __future__ import annotations

from ivr.flow.outcomes import Hangup as HangupOutcome
from ivr.verbs.base import Verb


class Hangup(Verb):
    """Say goodbye (optional prompt, not interruptible) and end the call."""

    name = "hangup"
    shorthand = "prompt"

    prompt: str | None = None
    cause: str = "ivr_hangup"

    def prompt_refs(self) -> list[str]:
        return [self.prompt] if self.prompt else []

    async def run(self, ctx):
        if self.prompt:
            await ctx.play(self.prompt, barge_in=False)
        return HangupOutcome(self.cause)
