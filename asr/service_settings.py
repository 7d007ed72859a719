"""The speech service's configuration section (``[speech]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SpeechServiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="start the speech service with `hotline serve`")
    host: str = Field("127.0.0.1", description="address the speech service listens on (websocket)")
    port: int = Field(2700, ge=1, le=65535, description="its port (2700 is vosk-server's)")
    url: str | list[str] | None = Field(None, description=(
        "URL workers use, e.g. an external vosk-server, or a list of speech hosts (failover in order; each worker "
        "starts at its own place in the list); default ws://host:port"))
    probe_interval_s: float = Field(2.0, gt=0, le=60, description=(
        "with several speech URLs: how often each worker checks that each answers"))
    max_wait_s: float = Field(3.0, gt=0, description="a decode expected to wait longer is refused as busy")
    max_batch: int = Field(4, ge=1, le=16, description="utterances decoded together in one batch")
    session_threads: int = Field(16, ge=1, le=256, description="threads running the callers' VAD sessions")
    prerender_answers: bool = Field(True, description="keep every FAQ answer rendered by the voice ahead of calls")

    @field_validator("url")
    @classmethod
    def _urls(cls, v: str | list[str] | None) -> str | list[str] | None:
        for u in [v] if isinstance(v, str) else v or []:
            if not u.startswith(("ws://", "wss://")):
                raise ValueError(f"{u!r}: a speech service URL begins with ws:// or wss://")
        if isinstance(v, list) and not v:
            raise ValueError("an empty list: leave speech.url out to use this host's own speech service")
        return v

    @property
    def ws_urls(self) -> list[str]:
        """The speech services workers use, in order of preference."""
        if isinstance(self.url, list):
            return list(self.url)
        return [self.url or f"ws://{self.host}:{self.port}"]

    @property
    def ws_url(self) -> str:
        return self.ws_urls[0]
