"""The IVR's configuration section."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

BUNDLED_MENU = Path(__file__).parent / "menus" / "default.yaml"
BUNDLED_PROMPTS = Path(__file__).parent / "prompts" / "zh"


class IvrSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    menu_file: Path = Field(BUNDLED_MENU, description="YAML call flow; reloaded when it changes")
    prompts_dir: Path = Field(BUNDLED_PROMPTS, description="WAV prompts named in the menu")
    menu_reload_interval_s: float = Field(2.0, gt=0, description="how often workers look for menu changes (s)")
    drain_timeout_s: float = Field(30.0, ge=0, description="on SIGTERM, wait this long for calls to end")
    max_call_duration_s: float = Field(1800.0, gt=0, description="a call is ended after this long in the IVR (s)")
    frame_gap_ms: float = Field(40.0, gt=0, description="a frame later than this counts as a gap")
