from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from ivr.flow.outcomes import Goto, Hangup, Repeat
from ivr.verbs.base import DIGITS, Verb

REPEAT = "repeat"


class Gather(Verb):
    """Collect keypad digits: a menu choice (``choices``) or a value (``store``).

    The prompt is interruptible: a digit pressed during it (or typed ahead during an earlier
    prompt) counts as input. A wrong entry plays ``invalid_prompt``, silence ``no_input_prompt``;
    after ``retries`` extra attempts the flow goes to ``on_failure`` (default: hang up politely).
    """

    name = "gather"

    prompt: str | list[str] | None = None
    choices: dict[str, str] | None = Field(None, description="digits -> node name, or 'repeat'")
    store: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]*$", description="call variable to set")
    min_digits: int = Field(1, ge=1, le=64)
    max_digits: int | None = Field(None, ge=1, le=64)
    terminator: str | None = "#"
    pattern: str | None = Field(None, description="regular expression the whole entry must match")
    timeout: float = Field(6.0, gt=0, le=60, description="seconds to wait for the first digit")
    inter_digit_timeout: float = Field(4.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)
    invalid_prompt: str | None = "invalid_input"
    no_input_prompt: str | None = "no_input"
    failure_prompt: str | None = None
    on_failure: str | None = None

    @field_validator("choices")
    @classmethod
    def _choice_keys(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None:
            if not v:
                raise ValueError("choices must not be empty")
            for key in v:
                if not key or set(key) - DIGITS:
                    raise ValueError(f"choice {key!r} must be keypad digits 0-9 * #")
        return v

    @field_validator("terminator")
    @classmethod
    def _terminator(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 or v not in DIGITS):
            raise ValueError("terminator must be one keypad key, e.g. '#'")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v

    @model_validator(mode="after")
    def _shape(self):
        if (self.choices is None) == (self.store is None):
            raise ValueError("gather needs exactly one of 'choices' (a menu) or 'store' (a value)")
        if self.max_digits is not None and self.max_digits < self.min_digits:
            raise ValueError("max_digits is smaller than min_digits")
        return self

    @property
    def prompts(self) -> list[str]:
        if self.prompt is None:
            return []
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def limit(self) -> int:
        if self.max_digits is not None:
            return self.max_digits
        if self.choices is not None:
            return max(len(k) for k in self.choices)
        return 32

    def node_refs(self) -> list[str]:
        refs = [n for n in (self.choices or {}).values() if n != REPEAT]
        return refs + ([self.on_failure] if self.on_failure else [])

    def prompt_refs(self) -> list[str]:
        extra = [self.invalid_prompt, self.no_input_prompt, self.failure_prompt]
        return self.prompts + [p for p in extra if p]

    async def _collect(self, ctx) -> str:
        for name in self.prompts:
            if (await ctx.play(name, barge_in=True)).interrupted:
                break
        entry = ""
        limit = self.limit
        wait = self.timeout
        while len(entry) < limit:
            got = await ctx.channel.next_digit(wait)
            if got is None:
                break
            digit, method = got
            from ivr.contract import DigitsReceived

            ctx.emit(DigitsReceived, node=ctx.node, digits=digit, method=method)
            if self.terminator and digit == self.terminator and (self.store or limit > 1):
                break
            entry += digit
            if self.choices is not None and entry in self.choices and not any(
                k != entry and k.startswith(entry) for k in self.choices
            ):
                break
            wait = self.inter_digit_timeout
        return entry

    def _valid(self, entry: str) -> bool:
        if self.choices is not None:
            return entry in self.choices
        if len(entry) < self.min_digits:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, entry) is not None

    async def run(self, ctx):
        for attempt in range(self.retries + 1):
            entry = await self._collect(ctx)
            if self._valid(entry):
                if self.store is not None:
                    ctx.vars[self.store] = entry
                    return None
                target = self.choices[entry]
                return Repeat() if target == REPEAT else Goto(target)
            ctx.channel.flush_digits()
            if attempt == self.retries:
                break
            retry_prompt = self.invalid_prompt if entry else self.no_input_prompt
            if retry_prompt:
                await ctx.play(retry_prompt, barge_in=True)
        if self.failure_prompt:
            await ctx.play(self.failure_prompt, barge_in=False)
        return Goto(self.on_failure) if self.on_failure else Hangup("no_valid_input")
