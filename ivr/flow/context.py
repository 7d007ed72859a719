"""Per-call state the verbs share: the channel, prompts, services, variables, the checked case and the event sink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.audio import Clip, PromptLibrary
from ivr.cases_client import VerifiedCase
from ivr.contract import PromptPlayed
from ivr.flow.channel import Channel, PlayResult
from ivr.flow.services import CallServices
from ivr.flow.turn import OpenTurn


@dataclass
class FlowContext:
    channel: Channel
    prompts: PromptLibrary
    emit: Callable[..., None]  # emit(EventClass, **fields) -> fills call_id/worker
    node: str = ""
    vars: dict[str, str] = field(default_factory=dict)
    steps: int = 0
    services: CallServices = field(default_factory=CallServices)
    verified_case: VerifiedCase | None = None  # set by case_check (ivr/case_dialog.py) for the rest of the call
    #: conversations with a person bridged in now (ivr/bridged.py): the IVR's time cap does not run meanwhile
    talking: int = 0
    #: the caller's last turn when it was ended before the recognizer's endpoint (ivr/listening.py, quick_answer)
    open_turn: OpenTurn | None = None
    #: (text, confidence, decision) the knowledge base gave on the recognizer's speculative text (ivr/kb_dialog.py)
    kb_prefetch: tuple[str, str | None, Any] | None = None
    #: the early decision on the speculative text still in flight when the final of that very text came (its round
    #: trip is not made twice: kb_answer awaits it; ivr/listening.py)
    early_deciding: asyncio.Task | None = None

    async def play(self, name: str, barge_in: bool = True) -> PlayResult:
        clip = self.prompts.get(name)
        return await self.play_clip(clip, barge_in, PromptPlayed, name)

    async def play_clip(self, clip: Clip, barge_in: bool, event=None, name: str | None = None) -> PlayResult:
        if barge_in and self.channel.has_digits():
            result = PlayResult(0, True)
        else:
            result = await self.channel.play(clip, barge_in)
        if event is not None:
            self.emit(event, node=self.node, prompt=name or clip.name, played_ms=result.played_ms,
                      duration_ms=clip.duration_ms, interrupted=result.interrupted)
        return result

    def expand(self, template: str) -> str:
        """``{name}`` placeholders from call variables; unknown names expand to ''."""
        out, i = [], 0
        while i < len(template):
            j = template.find("{", i)
            if j < 0:
                out.append(template[i:])
                break
            k = template.find("}", j)
            if k < 0:
                out.append(template[i:])
                break
            out.append(template[i:j])
            out.append(self.vars.get(template[j + 1 : k], ""))
            i = k + 1
        return "".join(out)
