"""What a call may use beyond its channel: the speech service, the hub, the clock of working hours, settings.

One ``CallServices`` per call, built by the worker (ivr/worker.py) from its settings; unit tests build their own.
A service that is ``None`` (or a falsy URL) is not there, and the dialogs fall back as they always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from ivr.speech_hosts import SpeechTarget
from ivr.voice_cache import VoiceCache


class HubConnection(Protocol):
    """The worker's command socket to the hub (ivr/hub_commands.HubLink): the queue needs it up."""

    connected: bool


class StaffPresence(Protocol):
    """Is staff there now? (ivr/settings.OfficeHours; not work_orders.calendar.WorkingHours, the settings
    it is made from)."""

    def is_open(self) -> bool: ...


@dataclass(frozen=True)
class CallServices:
    #: the speech service (recognition, voice): one URL or the worker's SpeechHosts (failover between hosts);
    #: None: keys only, bundled prompts
    speech_url: SpeechTarget | None = None
    hub_url: str | None = None  # the hub's HTTP API (knowledge base, case desk)
    hub_token: str | None = None
    caller: str | None = None  # the caller's SIP URI (the case desk counts failures per number)
    worker_name: str = "worker"
    hub_link: HubConnection | None = None  # the operator queue waits only while the hub can reach the worker
    working_hours: StaffPresence | None = None  # None: always open
    record_bridged_calls: bool = False
    operator_transfer: Literal["bridge", "refer"] = "bridge"
    refer_fallback_bridge: bool = True
    recordings_dir: Path | None = None  # None: ./recordings
    voice_cache: VoiceCache | None = None  # the worker's; None: every sentence fetched from the speech service
