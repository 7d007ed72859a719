"""Keys and speech at once: prompts play, and the first key or spoken reply ends them and is returned.

Used by menus that listen (``gather`` with ``speech: true``) and by the knowledge-base dialogue (the list
"您是想问：一，…；二，…？请说序号或按键", the yes/no confirm). A key stops the prompt on the next frame, as does
the start of speech (barge-in); a key wins when both come. Prompts may still be rendering when the call reaches
them (``asyncio.Task``s that give a clip): each plays as soon as it is there, the first at once.

After a turn ended early (``OpenTurn``, ivr/flow/turn.py) the prompt starts at once, while the recognizer still
follows that turn to its endpoint; listening for the reply begins there (the caller's audio is one stream), and
a caller who went on within the end silence stops the prompt: ``Reply("resumed")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Literal

from ivr.audio import Clip
from ivr.contract import DigitsReceived, PromptPlayed
from ivr.flow.context import FlowContext
from ivr.flow.turn import OpenTurn
from ivr.listening import hear_utterance

LISTEN_HORIZON_S = 120.0  # the recognizer's own no-input clock is not used: the prompt's end starts ours


@dataclass(frozen=True)
class Reply:
    kind: Literal["key", "speech", "none", "resumed"]
    key: str = ""
    text: str = ""
    confidence: float | None = None
    speech_down: bool = False  # the recognizer was unreachable or busy (keys still worked)
    alternatives: tuple[str, ...] = ()  # the recognizer's next hypotheses of the reply, best first

    def texts(self) -> list[str]:
        """What was said as the recognizer heard it, then its other hypotheses (n-best)."""
        return [self.text, *self.alternatives] if self.kind == "speech" else []


def can_listen(ctx: FlowContext) -> bool:
    return bool(ctx.services.speech_url) and ctx.channel.hears


async def _play(ctx: FlowContext, clips: list[Clip | asyncio.Task[Clip | None]], speaking: asyncio.Event) -> None:
    for item in clips:
        clip = item if isinstance(item, Clip) else await item
        if clip is None or speaking.is_set():
            continue
        if (await ctx.play_clip(clip, True, PromptPlayed, clip.name)).interrupted or speaking.is_set():
            return


def _key(ctx: FlowContext, got: tuple[str, str]) -> Reply:
    ctx.emit(DigitsReceived, node=ctx.node, digits=got[0], method=got[1])
    return Reply("key", key=got[0])


async def hear_or_key(ctx: FlowContext, clips: list[Clip | asyncio.Task[Clip | None]], *, listen: bool = True,
                      no_input_s: float = 6.0, max_utterance_s: float = 10.0, end_silence_ms: int = 600,
                      alternatives: int = 0, turn: OpenTurn | None = None) -> Reply:
    """Play ``clips`` while waiting for a key and (with ``listen`` and a speech service) for speech. After the last
    clip the caller has ``no_input_s`` to begin; someone who began speaking is heard to the end. ``alternatives``:
    ask the recognizer for that many next hypotheses of the reply (``Reply.alternatives``). ``turn``: the
    caller's question ended early and is still being recognized (see the module's doc)."""
    channel = ctx.channel
    if turn is not None and turn.resumed.is_set():
        return Reply("resumed")
    speaking = asyncio.Event()
    player = asyncio.create_task(_play(ctx, clips, speaking))
    config = {"priority": 0, "no_input_timeout_s": LISTEN_HORIZON_S, "max_utterance_s": max_utterance_s,
              "end_silence_ms": end_silence_ms, **({"alternatives": alternatives} if alternatives else {})}

    def listener() -> asyncio.Task | None:
        return asyncio.create_task(hear_utterance(ctx, ctx.services.speech_url or "", config, speaking)) \
            if listen and can_listen(ctx) else None

    # the question's turn still being recognized (its resumption stops the prompt, which wakes the loop below)
    rest = turn.rest if turn is not None and not turn.rest.done() else None
    hearing = None if rest is not None else listener()
    keying: asyncio.Task | None = None
    deadline: float | None = None
    extended = False
    speech_down = False
    try:
        while True:
            if keying is None or keying.done():
                keying = asyncio.create_task(channel.next_digit(
                    LISTEN_HORIZON_S if deadline is None else max(0.05, deadline - time.monotonic())))
            waiting = {keying} | ({hearing} if hearing is not None else set())
            if not player.done():
                waiting.add(player)
            if rest is not None:
                waiting.add(rest)
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if keying in done:
                if keying.result() is not None:
                    return _key(ctx, keying.result())
                keying = None
                await asyncio.sleep(0.02)  # a channel that answers at once that nothing came: do not spin
            if turn is not None and turn.resumed.is_set():
                return Reply("resumed")  # the caller went on over the prompt: the question is the whole utterance
            if rest is not None and rest.done():
                rest, hearing = None, listener()  # the question's endpoint: the reply is listened for from here
            if hearing is not None and hearing in done:
                heard = hearing.result()
                hearing = None
                if heard.kind == "final" and heard.text.strip():
                    got = await channel.next_digit(0.01) if channel.has_digits() else None
                    if got is not None:  # a key wins when both come
                        return _key(ctx, got)
                    alts = heard.raw.get("alternatives")
                    return Reply("speech", text=heard.text.strip(), confidence=heard.confidence,
                                 alternatives=tuple(str(a).strip() for a in alts if str(a).strip())
                                 if isinstance(alts, list) else ())
                speech_down = heard.kind in ("busy", "unavailable")
                if heard.kind == "no_input" and player.done():
                    return Reply("none")
            if player.done() and deadline is None:
                deadline = time.monotonic() + no_input_s
            if deadline is not None and time.monotonic() >= deadline:
                if hearing is not None and speaking.is_set() and not extended:
                    extended = True
                    deadline = time.monotonic() + max_utterance_s + 3.0  # heard to the end of the utterance
                    continue
                return Reply("none", speech_down=speech_down)
    finally:
        if not player.done():
            channel.stop_prompt()
        for t in (player, hearing, keying):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
