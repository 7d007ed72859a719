"""SIP configuration as data: transports, worker layout, ACL, codecs, trunk accounts."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SipAccount(BaseModel):
    """Optional registration of a worker to a PBX or SIP trunk."""

    model_config = ConfigDict(extra="forbid")

    name: str
    id_uri: str = Field(description='e.g. "sip:12368@pbx.court.example"')
    registrar: str = Field(description='e.g. "sip:pbx.court.example"')
    username: str = ""
    password: str = ""
    realm: str = "*"
    proxy: str | None = None
    register_timeout_s: int = Field(300, ge=30)


class SipSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address Kamailio (the front door) listens on")
    port: int = Field(5060, ge=1, le=65535)
    advertised_host: str | None = Field(None, description="address put in Via/Record-Route (NAT)")
    workers: int = Field(2, ge=1, le=64)
    max_calls_per_worker: int = Field(4, ge=1, le=4, description="the PyPI pjsua2 wheel allows 4")
    worker_host: str = "127.0.0.1"
    worker_base_port: int = Field(5070, ge=1, le=65535)
    transports: list[Literal["udp", "tcp"]] = Field(default_factory=lambda: ["udp", "tcp"], min_length=1)
    rtp_port_start: int = Field(20000, ge=1024, le=65000)
    rtp_ports_per_worker: int = Field(40, ge=8)
    clock_rate: Literal[8000, 16000] = 8000
    codecs: list[str] = Field(default_factory=lambda: ["PCMA/8000", "PCMU/8000", "G722/16000"])
    acl: list[IPNetwork] = Field(
        default_factory=lambda: [
            ipaddress.ip_network(n)
            for n in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
        ],
        description="source networks allowed to send INVITEs; others get 403",
    )
    accounts: list[SipAccount] = Field(default_factory=list)
    kamailio_binary: str = "kamailio"
    probing_interval_s: int = Field(2, ge=1, le=60)

    @field_validator("codecs")
    @classmethod
    def _codec_names(cls, v: list[str]) -> list[str]:
        for c in v:
            name, _, rate = c.partition("/")
            if not name or not rate.isdigit():
                raise ValueError(f"codec {c!r} must look like NAME/RATE, e.g. PCMA/8000")
        return v

    def worker_port(self, index: int) -> int:
        return self.worker_base_port + index

    def worker_rtp_port(self, index: int) -> int:
        return self.rtp_port_start + index * self.rtp_ports_per_worker

    def allows(self, address: str) -> bool:
        """True if the source address (``ip`` or ``ip:port`` or ``[v6]:port``) is in the ACL."""
        ip = parse_host(address)
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.acl)


def parse_host(address: str) -> str:
    address = address.strip()
    if address.startswith("["):
        return address[1 : address.index("]")]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address
