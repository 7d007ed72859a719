"""The console hub's configuration section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address of the console web server")
    port: int = Field(8368, ge=1, le=65535, description="port of the console web server")
    public_url: str | None = Field(None, description="URL workers use to reach the hub")
    secret_key: str | None = Field(None, min_length=32, description="signs session cookies; generated if unset")
    worker_token: str | None = Field(None, min_length=16, description="shared secret of workers; generated if unset")
    cookie_secure: bool = Field(True, description="send the session cookie over HTTPS only")
    tls: bool = Field(False, description=(
        "serve HTTPS: tls_cert/tls_key, or a self-signed certificate made at first start under home/tls (its "
        "SHA-256 fingerprint is printed); ./run.sh turns this on"))
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) for HTTPS; with tls_key")
    tls_key: Path | None = Field(None, description="PEM private key for HTTPS; with tls_cert")
    session_hours: float = Field(12.0, gt=0, description="a login lasts this long")
    offer_timeout_s: float = Field(15.0, gt=0, le=300,
                                   description="an operator who neither accepts nor declines an offer this long "
                                               "is set away and the call goes to the next operator")
    bridge_ring_timeout_s: float = Field(20.0, gt=0, le=120,
                                         description="how long the worker rings an operator's phone after accept")
    worker_lost_after_s: float = Field(120.0, ge=5, le=3600, description=(
        "a worker whose socket stays closed this long is taken as gone (a host that died never says so): its "
        "calls end on the hub as worker_lost and leave the queue; a worker that comes back says which it has"))
    timezone: str = Field("Asia/Shanghai", description="the court's time zone (work-order numbers, due dates)")
    allowed_origins: list[str] = Field(default_factory=list, description=(
        "origins (https://host[:port]) besides the hub's own whose pages may send state-changing requests with the "
        "session cookie (CSRF check on Origin/Referer)"))
    max_body_kb: int = Field(1024, ge=16, le=1 << 20, description=(
        "largest request body in KB before anything parses it (the KB import, attachments and worker event "
        "batches have their own limits)"))
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"], description=(
        "addresses (or CIDR ranges) of the load balancers whose X-Forwarded-For names the client: the HAProxy host "
        "of [balancer], so login and tracking limits count per browser, not per balancer"))
    public_docs: bool = Field(False, description="serve /docs and /openapi.json without a login")
    public_metrics: bool = Field(False, description="serve /metrics without a login or the worker token")
    track_per_minute: int = Field(30, ge=1, le=10_000,
                                  description="public order-tracking lookups per address and minute")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """Working days have one home: China's official schedule plus ``work_orders.holiday_file``."""
        if isinstance(data, dict):
            for key, where in (("holidays", "holidays"), ("extra_workdays", "workdays")):
                if key in data:
                    raise ValueError(f"'hub.{key}' is gone: put these days in the '{where}' list of the holiday file "
                                     f"named by 'work_orders.holiday_file' (YAML), which the IVR's working hours "
                                     f"and the work-order deadlines share")
        return data

    @property
    def url(self) -> str:
        return self.public_url or f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"
