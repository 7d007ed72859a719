from __future__ import annotations

from ivr.flow.outcomes import Repeat as RepeatOutcome
from ivr.verbs.base import Verb


class Repeat(Verb):
    """Run the current node again from the start (重听)."""

    name = "repeat"

    async def run(self, ctx):
        return RepeatOutcome()
