from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from ivr.verbs.base import DIGITS, Verb

CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
#: prompts the position announcement is built from when the speech service's voice is not there
ANNOUNCE_PROMPTS = ("queue_wait", "queue_ahead", "queue_ahead_tail", "queue_next", "number_ten", "number_two",
                    *(f"digit_{d}" for d in "0123456789"))


class Handoff(Verb):
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

    reason: str = "caller_request"
    category: str | None = None
    prompt: str | None = "handoff"
    unavailable_prompt: str | None = "handoff_unavailable"
    queue: bool = Field(True, description="wait for an operator; false: record the request and end the call")
    hold_music: str = "hold_music"
    announce_every_s: float = Field(30.0, ge=5, le=600)
    max_wait_s: float = Field(180.0, gt=0, le=3600)
    callback_key: str = "1"
    callback_message: bool = Field(True, description="record a short message with a callback request")
    callback_prompt: str | None = "callback_message"
    callback_goodbye_prompt: str | None = "callback_goodbye"
    max_wait_prompt: str | None = "queue_max_wait"
    after_hours_prompt: str = "after_hours"
    after_hours_goodbye_prompt: str | None = "message_goodbye"
    message_max_s: float = Field(60.0, ge=5, le=300)
    confirm_message: bool = Field(False, description="after a message: 确认请按1，重新录制请按2")

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
        from ivr.queueing import run_handoff

        return await run_handoff(ctx, self)
