from __future__ import annotations

from pydantic import field_validator

from ivr.flow.outcomes import Hangup as HangupOutcome
from ivr.verbs.base import Verb

CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")


class Handoff(Verb):
    """Hand the caller to a person.

    Until the operator queue exists (console issue) this records the request, tells the caller
    that staff will call back (``unavailable_prompt``) and ends the call, so nothing is lost.
    """

    name = "handoff"
    shorthand = "reason"

    reason: str = "caller_request"
    category: str | None = None
    prompt: str | None = "handoff"
    unavailable_prompt: str | None = "handoff_unavailable"

    def prompt_refs(self) -> list[str]:
        return [p for p in (self.prompt, self.unavailable_prompt) if p]

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        if v is not None and v not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        return v

    async def run(self, ctx):
        from ivr.contract import HandoffRequested

        ctx.emit(HandoffRequested, node=ctx.node, reason=self.reason, category=self.category)
        if self.prompt:
            await ctx.play(self.prompt, barge_in=False)
        if self.unavailable_prompt:
            await ctx.play(self.unavailable_prompt, barge_in=False)
        return HangupOutcome("handoff_unavailable")
