from __future__ import annotations

from typing import Literal

from pydantic import Field

from ivr.recording import RecordOptions, record_and_report
from ivr.verbs.base import Verb


class Record(Verb):
    """Record a message from the caller: prompt, beep, speech until ``#``, ``end_silence_s`` of silence
    or ``max_s``; optionally "确认请按1，重新录制请按2". Saved as ``recordings/<call_id>-<purpose>.wav``,
    transcribed by the speech service when there is one, reported as MessageRecorded."""

    name = "record"
    shorthand = "purpose"

    purpose: Literal["after_hours", "callback", "contact_judge", "urge", "complaint", "suggestion"]
    prompt: str | None = None
    beep: bool = True
    max_s: float = Field(60.0, ge=3, le=300)
    end_silence_s: float = Field(3.0, ge=1, le=15)
    no_input_s: float = Field(8.0, ge=2, le=30)
    confirm: bool = False
    confirm_prompt: str = "record_confirm"

    def prompt_refs(self) -> list[str]:
        refs = [self.prompt] if self.prompt else []
        return refs + (["beep"] if self.beep else []) + ([self.confirm_prompt] if self.confirm else [])

    async def run(self, ctx):
        if self.prompt:
            await ctx.play(self.prompt, barge_in=False)
        await record_and_report(ctx, RecordOptions(self.purpose, max_s=self.max_s, end_silence_s=self.end_silence_s,
                                                   no_input_s=self.no_input_s, beep=self.beep),
                                confirm=self.confirm, confirm_prompt=self.confirm_prompt)
        return None
