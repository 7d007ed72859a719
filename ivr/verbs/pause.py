from __future__ import annotations

from pydantic import Field

from ivr.verbs.base import Verb


class Pause(Verb):
    """Silence for a moment (a digit cuts it short)."""

    name = "pause"
    shorthand = "seconds"

    seconds: float = Field(gt=0, le=30)

    async def run(self, ctx):
        await ctx.play_clip(ctx.prompts.silence(self.seconds), barge_in=True)
        return None
