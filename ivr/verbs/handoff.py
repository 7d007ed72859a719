from __future__ import annotations

from pydantic import field_validator, model_validator

from ivr.queueing import HandoffOptions, run_handoff
from ivr.verbs.base import DIGITS, Verb

CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
#: prompts the position announcement is built from when the speech service's voice is not there
ANNOUNCE_PROMPTS = ("queue_wait", "queue_ahead", "queue_ahead_tail", "queue_next", "number_ten", "number_two",
                    *(f"digit_{d}" for d in "0123456789"))


class Handoff(Verb, HandoffOptions):
    """Hand the caller to a person: the operator queue.

    The caller waits with hold music; every ``announce_every_s`` (and when the hub reports a new
    position) "您前面还有N位，请耐心等待；如需回电请按1". ``callback_key`` (1) leaves a callback request
    instead (a short recorded message when ``callback_message``), and so does waiting longer than
    ``max_wait_s``. When the hub calls an operator (a bridge command) the caller is connected to the
    operator's phone. Outside working hours (``ivr.working_hours``) the caller leaves a message; without
    a connection to the hub (or with ``queue: false``) the caller hears that staff will call back.
    """

    name = "handoff"
    shorthand = "reason"

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        if v is not None and v not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        return v

    @field_validator("callback_key")
    @classmethod
    def _key(cls, v: str) -> str:
        if len(v) != 1 or v not in DIGITS:
            raise ValueError("callback_key must be one keypad key")
        return v

    @model_validator(mode="after")
    def _prompts(self):
        if self.callback_message and not self.callback_prompt:
            raise ValueError("callback_message needs a callback_prompt (what to say before the beep)")
        return self

    def prompt_refs(self) -> list[str]:
        named = (self.prompt, self.unavailable_prompt, self.callback_prompt, self.callback_goodbye_prompt,
                 self.max_wait_prompt, self.after_hours_prompt, self.after_hours_goodbye_prompt)
        refs = [p for p in named if p]
        if self.queue:
            refs += [self.hold_music, "beep", *ANNOUNCE_PROMPTS]
            if self.confirm_message:
                refs.append("record_confirm")
        return refs

    async def run(self, ctx):
        return await run_handoff(ctx, self)
