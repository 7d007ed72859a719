"""The IVR's configuration section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# the hotline's one working-hours type, on its one calendar of working days (``ivr.working_hours`` is its section)
from work_orders.calendar import OfficeHours, WorkingHours

__all__ = ["BUNDLED_MENU", "BUNDLED_PROMPTS", "IvrSettings", "OfficeHours", "WorkingHours"]
BUNDLED_MENU = Path(__file__).parent / "menus" / "default.yaml"
BUNDLED_PROMPTS = Path(__file__).parent / "prompts" / "zh"
#: how long past ``drain_timeout_s`` the supervisor waits for a stopping worker before it kills it
STOP_GRACE_S = 10.0


class IvrSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    menu_file: Path = Field(BUNDLED_MENU, description="YAML call flow; reloaded when it changes")
    prompts_dir: Path = Field(BUNDLED_PROMPTS, description="WAV prompts named in the menu")
    menu_reload_interval_s: float = Field(2.0, gt=0, description="how often workers look for menu changes (s)")
    drain_timeout_s: float = Field(30.0, ge=0, description="on SIGTERM, wait this long for calls to end")
    max_call_duration_s: float = Field(1800.0, gt=0, description=(
        "a call is ended after this long in the IVR's menus (s); time talking with an operator or a judge's team does "
        "not count"))
    frame_gap_ms: float = Field(40.0, gt=0, description="a frame later than this counts as a gap")
    rtp_timeout_s: float = Field(60.0, ge=0, description=(
        "a call whose caller sends no RTP this long is hung up (cause rtp_timeout; 0 = never). Phones that stop "
        "sending during silence (VAD without comfort noise) need more than the longest silence"))
    record_bridged_calls: bool = Field(
        False, description="record bridged calls under home/recordings (stereo WAV: caller left, operator right)")
    operator_transfer: Literal["bridge", "refer"] = Field("bridge", description=(
        "how an accepted caller reaches the operator's phone: bridge (the worker calls the phone and joins the two "
        "calls; both legs transcribed, and recorded with record_bridged_calls) or refer (blind transfer: a REFER "
        "asks the caller's phone to call the operator itself and the worker drops out; its call slot is free at "
        "once, but nothing of the conversation is transcribed or recorded)"))
    refer_fallback_bridge: bool = Field(True, description=(
        "refer: when the caller's phone refuses the REFER (405, 501, 603, ...), bridge the call instead; false: "
        "the offer fails (refer_refused) and the caller waits on"))
    working_hours: WorkingHours = Field(default_factory=WorkingHours)

