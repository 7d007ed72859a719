from __future__ import annotations

from pydantic import model_validator

from ivr.audio import Clip
from ivr.contract import PromptPlayed
from ivr.verbs.base import Verb

DIGIT_PROMPTS = {**{d: f"digit_{d}" for d in "0123456789"}, "*": "digit_star", "#": "digit_hash"}


class Say(Verb):
    """Speak a value. ``digits: "{case_number}"`` reads keypad input back digit by digit.

    Free text needs the TTS renderer of the speech service and is refused until it is configured.
    """

    name = "say"
    shorthand = "digits"

    digits: str | None = None
    text: str | None = None
    barge_in: bool = True

    @model_validator(mode="after")
    def _one_of(self):
        if (self.digits is None) == (self.text is None):
            raise ValueError("say needs exactly one of 'digits' or 'text'")
        if self.text is not None:
            raise ValueError("say.text needs the TTS renderer, which is not configured; use play or digits")
        return self

    def prompt_refs(self) -> list[str]:
        return sorted(set(DIGIT_PROMPTS.values()))

    async def run(self, ctx):
        value = ctx.expand(self.digits or "")
        parts = [ctx.prompts.get(DIGIT_PROMPTS[c]).pcm for c in value if c in DIGIT_PROMPTS]
        if not parts:
            return None
        gap = ctx.prompts.silence(0.08).pcm
        clip = Clip(f"digits:{len(value)}", gap.join(parts), ctx.prompts.rate)
        await ctx.play_clip(clip, self.barge_in, PromptPlayed, "say_digits")
        return None
