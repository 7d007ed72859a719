"""Keys from the caller: one key, or an entry of several (a menu choice, a case number, a secret).

Every key read is a DigitsReceived event on the call's record (``•`` for each key of a masked entry). Used by
the gather verb, the case check, the knowledge-base answer, message confirmation and the 回访.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ivr.contract import DigitsReceived
from ivr.flow.context import FlowContext

MASKED_KEY = "•"  # how a key of a secret is recorded


async def read_key(ctx: FlowContext, timeout: float) -> str | None:
    """The next key (buffered or arriving within ``timeout``), recorded; None when none came."""
    got = await ctx.channel.next_digit(timeout)
    if got is None:
        return None
    ctx.emit(DigitsReceived, node=ctx.node, digits=got[0], method=got[1])
    return got[0]


@dataclass(frozen=True)
class EntryOptions:
    """How an entry of keys ends: ``terminator``, ``limit`` keys, ``complete`` (e.g. a whole menu choice) or a
    pause (``timeout`` before the first key, ``inter_digit`` after each)."""

    limit: int
    timeout: float
    inter_digit: float
    terminator: str | None = "#"  # None: no key ends the entry (it is a key of the entry like any other)
    masked: bool = False
    complete: Callable[[str], bool] | None = None


async def collect_keys(ctx: FlowContext, prompts: list[str], options: EntryOptions, first: str | None = None) -> str:
    """Play ``prompts`` (a key stops them), then read keys until the entry ends; the entry without its terminator.
    ``first``: a key already taken (and recorded) while listening; the prompts are then not played."""
    if first is None:
        for name in prompts:
            if (await ctx.play(name, barge_in=True)).interrupted:
                break
    entry, wait = "", options.timeout
    while len(entry) < options.limit:
        if first is not None:
            key, first = first, None
        else:
            got = await ctx.channel.next_digit(wait)
            if got is None:
                break
            key, method = got
            shown = key if key == options.terminator or not options.masked else MASKED_KEY
            ctx.emit(DigitsReceived, node=ctx.node, digits=shown, method=method)
        if options.terminator and key == options.terminator:
            break
        entry += key
        if options.complete is not None and options.complete(entry):
            break
        wait = options.inter_digit
    return entry
