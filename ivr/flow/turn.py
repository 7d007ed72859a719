"""A caller's turn the dialogue ended before the recognizer's endpoint (``quick_answer``, ivr/listening.py).

The recognizer's speculative text came back after ~0.2 s of silence and the knowledge base answers it, asks
"您是想问……吗" or lists two or three entries, so the reply starts without waiting for the full end silence. The
recognition of that utterance goes on: if the caller speaks again before the endpoint, the reply is stopped
(``resumed``) and ``rest`` gives the final text of the whole utterance, which the dialogue then takes instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class OpenTurn:
    text: str  # what the turn was ended on (the speculative text)
    rest: asyncio.Task  # -> the recognizer's final Heard of the whole utterance, or None when none came
    resumed: asyncio.Event = field(default_factory=asyncio.Event)  # the caller went on within the end silence
    match: Any = None  # the knowledge base's decision on ``text`` (ivr.hub_api.KbMatch)

    def close(self) -> None:
        if not self.rest.done():
            self.rest.cancel()
