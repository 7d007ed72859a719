"""The base of every menu verb: arguments validated by pydantic, one ``run`` per verb."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from ivr.flow.context import FlowContext
from ivr.flow.outcomes import Outcome

DIGITS = set("0123456789*#")


class Verb(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    #: the argument a bare ``- verb: value`` sets, e.g. ``- play: welcome``
    shorthand: ClassVar[str | None] = None

    def node_refs(self) -> list[str]:
        """Nodes this verb may jump to (checked when the menu loads)."""
        return []

    def prompt_refs(self) -> list[str]:
        """Prompt ids this verb may play (checked when the menu loads)."""
        return []

    async def run(self, ctx: FlowContext) -> Outcome:
        raise NotImplementedError
