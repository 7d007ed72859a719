"""The speech service's configuration section (``[speech]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SpeechServiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="start the speech service with `hotline serve`")
    host: str = Field("127.0.0.1", description="address the speech service listens on (websocket)")
    port: int = Field(2700, ge=1, le=65535, description="its port (2700 is vosk-server's)")
    url: str | None = Field(None, description="URL workers use, e.g. an external vosk-server; default ws://host:port")
    max_wait_s: float = Field(3.0, gt=0, description="a decode expected to wait longer is refused as busy")
    max_batch: int = Field(4, ge=1, le=16, description="utterances decoded together in one batch")
    session_threads: int = Field(16, ge=1, le=256, description="threads running the callers' VAD sessions")
    prerender_answers: bool = Field(True, description="keep every FAQ answer rendered by the voice ahead of calls")

    @property
    def ws_url(self) -> str:
        return self.url or f"ws://{self.host}:{self.port}"
