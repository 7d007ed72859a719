"""The ``balancer`` settings section: HAProxy in front of the hubs."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BalancerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hubs: list[str] = Field(default_factory=list, description=(
        "host:port of every hub; when set, `hotline serve` with the front role runs HAProxy in front of them on "
        "host:port below (browsers and workers use that address as hub.url)"))
    backup_hubs: list[str] = Field(default_factory=list, description=(
        "host:port of hubs that take traffic only while every hub in `hubs` is down (active/standby; hubs that "
        "share redis.url all serve at once)"))
    host: str = Field("127.0.0.1", description="address HAProxy listens on for browsers and workers")
    port: int = Field(8360, ge=1, le=65535, description="port HAProxy listens on")
    check_interval_ms: int = Field(1000, ge=100, le=60_000, description=(
        "how often HAProxy asks each hub's /healthz; two failures take a hub out and close its websockets, "
        "whose browsers reconnect to another hub"))
    hubs_tls: bool = Field(False, description="the hubs serve HTTPS (hub.tls): HAProxy connects to them over TLS")
    hubs_ca_file: Path | None = Field(None, description=(
        "PEM file of the certificate(s) the hubs' HTTPS certificates must verify against (with hubs_tls)"))
    binary: str = Field("haproxy", description="the HAProxy program")

    @field_validator("hubs", "backup_hubs")
    @classmethod
    def _host_ports(cls, hubs: list[str]) -> list[str]:
        for h in hubs:
            host, sep, port = h.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{h!r} is not host:port")
        return hubs
