"""The console hub's configuration section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address of the console web server")
    port: int = Field(8368, ge=1, le=65535, description="port of the console web server")
    public_url: str | None = Field(None, description="URL workers use to reach the hub")
    secret_key: str | None = Field(None, min_length=32, description="signs session cookies; generated if unset")
    worker_token: str | None = Field(None, min_length=16, description="shared secret of workers; generated if unset")
    cookie_secure: bool = Field(True, description="send the session cookie over HTTPS only")
    session_hours: float = Field(12.0, gt=0, description="a login lasts this long")

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
