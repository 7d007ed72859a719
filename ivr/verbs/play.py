from __future__ import annotations

from pydantic import Field

from ivr.verbs.base import Verb


class Play(Verb):
    """Play one or more WAV prompts; a DTMF digit stops them when ``barge_in`` (default)."""

    name = "play"
    shorthand = "prompt"

    prompt: str | list[str] = Field(min_length=1)
    barge_in: bool = True

    @property
    def names(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def prompt_refs(self) -> list[str]:
        return self.names

    async def run(self, ctx):
        for n in self.names:
            result = await ctx.play(n, self.barge_in)
            if result.interrupted:
                break
        return None
