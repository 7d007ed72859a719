from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from pydantic import Field, model_validator

from ivr.contract import DigitsReceived
from ivr.flow.outcomes import Goto
from ivr.flow.outcomes import Hangup as HangupOutcome
from ivr.kb_dialog import answers_outright
from ivr.keypad import EntryOptions, collect_keys
from ivr.listening import Early, ListenOptions, listen_once
from ivr.speech_client import Heard
from ivr.verbs.base import Verb

KEY_HORIZON_S = 120.0  # how long one wait for a key may last; the recognizer's no-input clock ends the turn
KEYS_INSTEAD = "keys_instead"  # 请用电话按键输入，以井号键结束。


class Listen(Verb):
    """Hear what the caller says: the prompt plays, the caller speaks (speaking stops the prompt), and
    the speech service's final text is stored in ``store``. Partials and the final are recorded on the
    call. Silence plays ``no_input_prompt`` and retries; then (or when the recognizer is busy or
    unreachable) the flow goes to ``on_failure``. With ``expect: digits`` the caller may key the number
    instead (a key stops the prompt and wins over speech; ``#`` or ``digits_length`` keys end the entry), and
    when the recognizer is busy or unavailable the turn asks for keys (``keys_instead``) before it fails.
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
    inter_digit_timeout: float = Field(5.0, gt=0, le=30, description="with expect: digits, a keyed entry ends after "
                                       "this pause")
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
        refs = self.prompts + (["beep"] if self.beep else []) + ([KEYS_INSTEAD] if self.expect == "digits" else [])
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
            early = answers_outright(ctx) if self.quick_answer else None
            if self.expect == "digits":
                result = await self._hear_or_key(ctx, options, prompts, early)
                if not isinstance(result, str) and result.kind in ("busy", "unavailable"):
                    result = await self._keys_instead(ctx, prompts) or result  # nothing keyed: the failure stands
                if isinstance(result, str):
                    if result:
                        ctx.vars[self.store] = result
                        ctx.vars.pop(f"{self.store}_confidence", None)  # keyed: nothing to be unsure of
                        return None
                    ctx.channel.flush_digits()
                    continue  # "#" alone: as silence
            else:
                result = await listen_once(ctx, options, prompts, early)
            if result.kind == "final" and result.text:
                ctx.vars[self.store] = result.text
                if result.confidence is not None:  # the knowledge base weighs what the recognizer was unsure of
                    ctx.vars[f"{self.store}_confidence"] = f"{result.confidence:.3f}"
                return None
            if result.kind in ("busy", "unavailable"):
                return self._fail(f"asr_{result.kind}")
        return self._fail("no_speech")

    async def _keys_instead(self, ctx, prompts: list[str]) -> str:
        """The number keyed after ``keys_instead`` when the recognizer cannot hear it. Without a speech service
        the turn's own prompts were not played yet, so they come first."""
        unheard = not ctx.services.speech_url or not ctx.channel.hears
        return await collect_keys(ctx, (prompts if unheard else []) + [KEYS_INSTEAD], EntryOptions(
            self.digits_length or 32, self.no_input_timeout_s, self.inter_digit_timeout))

    async def _hear_or_key(self, ctx, options: ListenOptions, prompts: list[str], early: Early | None) -> Heard | str:
        """The utterance, or the keyed entry (a str) when the caller keys the number instead."""
        hearing = asyncio.create_task(listen_once(ctx, options, prompts, early))
        keying: asyncio.Task | None = None
        try:
            while True:
                keying = asyncio.create_task(ctx.channel.next_digit(KEY_HORIZON_S))
                done, _ = await asyncio.wait({hearing, keying}, return_when=asyncio.FIRST_COMPLETED)
                got = keying.result() if keying in done else None
                if got is None and hearing in done and ctx.channel.has_digits():
                    got = await ctx.channel.next_digit(0.01)  # a key wins when both come
                if got is not None:
                    ctx.emit(DigitsReceived, node=ctx.node, digits=got[0], method=got[1])
                    hearing.cancel()  # stops the prompt and the recognizer's stream
                    with contextlib.suppress(asyncio.CancelledError):
                        await hearing
                    return await collect_keys(ctx, [], EntryOptions(
                        self.digits_length or 32, self.inter_digit_timeout, self.inter_digit_timeout), first=got[0])
                if hearing in done:
                    return hearing.result()
                await asyncio.sleep(0.02)  # a channel that answers at once that no key came: do not spin
        finally:
            for t in (hearing, keying):
                if t is not None and not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
