from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ivr.flow.outcomes import Goto
from ivr.flow.outcomes import Hangup as HangupOutcome
from ivr.kb_dialog import answers_outright
from ivr.listening import ListenOptions, listen_once
from ivr.verbs.base import Verb


class Listen(Verb):
    """Hear what the caller says: the prompt plays, the caller speaks (speaking stops the prompt), and
    the speech service's final text is stored in ``store``. Partials and the final are recorded on the
    call. Silence plays ``no_input_prompt`` and retries; then (or when the recognizer is busy or
    unreachable) the flow goes to ``on_failure``.
    """

    name = "listen"
    shorthand = "prompt"

    prompt: str | list[str] | None = None
    beep: bool = Field(True, description="a short tone after the prompt: speak now")
    store: str = Field("utterance", pattern=r"^[a-z_][a-z0-9_]*$")
    no_input_timeout_s: float = Field(6.0, gt=0, le=30, description="after the prompt")
    max_utterance_s: float = Field(30.0, gt=0, le=60, description="longer speech is decoded in windows cut at pauses")
    end_silence_ms: int = Field(600, ge=200, le=3000)
    quick_answer: bool = Field(False, description="a question the knowledge base answers, confirms or lists ends "
                               "the turn on the recognizer's speculative text (~0.2 s of silence), not the full end "
                               "silence; for a listen followed by kb_answer (the caller going on stops the reply)")
    expect: Literal["digits", "case_number"] | None = Field(
        None, description="a spoken number: the stored text is its digits or the canonical case number; speech "
        "that is no number counts as no input. Read it back (say: {digits: ...}) before acting on it")
    digits_length: int | None = Field(None, ge=1, le=32, description="with expect: digits, e.g. 11 for a mobile")
    retries: int = Field(1, ge=0, le=5)
    no_input_prompt: str | None = "no_speech"
    on_failure: str | None = None

    @model_validator(mode="after")
    def _length_needs_digits(self) -> Listen:
        if self.digits_length is not None and self.expect != "digits":
            raise ValueError("digits_length goes with expect: digits")
        return self

    @property
    def prompts(self) -> list[str]:
        if self.prompt is None:
            return []
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def prompt_refs(self) -> list[str]:
        refs = self.prompts + (["beep"] if self.beep else [])
        return refs + ([self.no_input_prompt] if self.no_input_prompt else [])

    def node_refs(self) -> list[str]:
        return [self.on_failure] if self.on_failure else []

    def _fail(self, reason: str):
        return Goto(self.on_failure) if self.on_failure else HangupOutcome(reason)

    def options(self) -> ListenOptions:
        return ListenOptions(no_input_timeout_s=self.no_input_timeout_s, max_utterance_s=self.max_utterance_s,
                             end_silence_ms=self.end_silence_ms, beep=self.beep, expect=self.expect,
                             digits_length=self.digits_length)

    async def run(self, ctx):
        options = self.options()
        for attempt in range(self.retries + 1):
            prompts = self.prompts if attempt == 0 or not self.no_input_prompt else [self.no_input_prompt]
            result = await listen_once(ctx, options, prompts, answers_outright(ctx) if self.quick_answer else None)
            if result.kind == "final" and result.text:
                ctx.vars[self.store] = result.text
                if result.confidence is not None:  # the knowledge base weighs what the recognizer was unsure of
                    ctx.vars[f"{self.store}_confidence"] = f"{result.confidence:.3f}"
                return None
            if result.kind in ("busy", "unavailable"):
                return self._fail(f"asr_{result.kind}")
        return self._fail("no_speech")
