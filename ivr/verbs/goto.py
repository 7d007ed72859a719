from __future__ import annotations

from ivr.flow.outcomes import Goto as GotoOutcome
from ivr.verbs.base import Verb


class Goto(Verb):
    """Continue in another node (a submenu, or back to the main menu)."""

    name = "goto"
    shorthand = "node"

    node: str

    def node_refs(self) -> list[str]:
        return [self.node]

    async def run(self, ctx):
        return GotoOutcome(self.node)
