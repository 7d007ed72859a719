"""SIP configuration as data: transports, worker layout, ACL, codecs, trunk accounts."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, field_validator


def _network(v: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return v
    try:
        return ipaddress.ip_network(str(v), strict=False)
    except ValueError:
        raise ValueError(f"{v!r} is not a network such as 10.0.0.0/8 or 2001:db8::/32") from None


IPNetwork = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, PlainValidator(_network),
                      PlainSerializer(str)]


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
    port: int = Field(5060, ge=1, le=65535, description="SIP port of the front door (UDP and TCP)")
    advertised_host: str | None = Field(None, description="address put in Via/Record-Route (NAT)")
    workers: int = Field(2, ge=1, le=64, description="IVR worker processes; capacity is workers x max_calls_per_worker")
    worker_prefix: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$", max_length=16, description=(
        "put before this host's worker names (w0, w1...): IVR hosts that share a hub need different ones, e.g. 'b-'"))
    remote_workers: list[str] = Field(default_factory=list, description=(
        'IVR workers on other hosts as "host:port" (their sip.worker_host and worker port): the front door '
        "dispatches to them too, probing each with OPTIONS; `hotline serve` re-reads this list on SIGHUP "
        "and reloads Kamailio's dispatcher without a restart"))
    max_calls_per_worker: int = Field(4, ge=1, le=4, description="the PyPI pjsua2 wheel allows 4")
    worker_host: str = Field("127.0.0.1", description="address the workers listen on (behind Kamailio)")
    worker_base_port: int = Field(5070, ge=1, le=65535, description="worker i listens on this port + i")
    transports: list[Literal["udp", "tcp"]] = Field(default_factory=lambda: ["udp", "tcp"], min_length=1,
                                                   description="SIP transports to listen on")
    rtp_port_start: int = Field(20000, ge=1024, le=65000, description="first RTP port; worker i uses a block after it")
    rtp_ports_per_worker: int = Field(40, ge=8, description="size of each worker's RTP port block")
    clock_rate: Literal[8000, 16000] = Field(8000, description="media bridge clock in Hz (8000 suits G.711 phones)")
    codecs: list[str] = Field(default_factory=lambda: ["PCMA/8000", "PCMU/8000", "G722/16000"],
                              description="codecs offered, most preferred first; others are disabled")
    acl: list[IPNetwork] = Field(
        default_factory=lambda: [
            ipaddress.ip_network(n)
            for n in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
        ],
        description="source networks allowed to send INVITEs; others get 403",
    )
    accounts: list[SipAccount] = Field(default_factory=list, description="registrations, see [[sip.accounts]] below")
    kamailio_binary: str = Field("kamailio", description="Kamailio executable (Debian package kamailio)")
    probing_interval_s: int = Field(2, ge=1, le=60, description="Kamailio pings each worker this often (s)")
    max_calls_per_source: int = Field(0, ge=0, le=10_000, description=(
        "concurrent calls Kamailio lets in from one source address (486 beyond; 0 = no limit: a PBX or trunk sends "
        "every caller from one address)"))
    max_calls_per_caller: int = Field(2, ge=0, le=10_000, description=(
        "concurrent calls Kamailio lets in with one caller ID (the From user; 486 beyond; 0 = no limit)"))

    tls: bool = Field(False, description=(
        "also listen for SIP over TLS on tls_port (Kamailio's tls module, Debian kamailio-tls-modules); the leg from "
        "Kamailio to the workers stays on worker_host"))
    tls_port: int = Field(5061, ge=1, le=65535, description="SIP over TLS port of the front door")
    tls_cert: str | None = Field(None, description=(
        "PEM certificate for SIP TLS; with tls_key. Unset: a self-signed one made at first start under home/tls/"))
    tls_key: str | None = Field(None, description="PEM private key for SIP TLS")
    srtp: Literal["off", "optional", "mandatory"] = Field("off", description=(
        "SRTP (SDES keys in the SDP) on the workers' calls: optional = accept and offer it, plain RTP still works; "
        "mandatory = refuse calls without it. SDES keys are only secret over TLS (sip.tls)"))

    @field_validator("codecs")
    @classmethod
    def _codec_names(cls, v: list[str]) -> list[str]:
        for c in v:
            name, _, rate = c.partition("/")
            if not name or not rate.isdigit():
                raise ValueError(f"codec {c!r} must look like NAME/RATE, e.g. PCMA/8000")
        return v

    @field_validator("remote_workers")
    @classmethod
    def _host_ports(cls, v: list[str]) -> list[str]:
        for hp in v:
            host, sep, port = hp.rpartition(":")
            if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{hp!r}: a worker is host:port, e.g. 10.0.0.2:5070 or [2001:db8::2]:5070")
        if len(set(v)) != len(v):
            raise ValueError("a worker is named twice")
        return v

    def worker_name(self, index: int) -> str:
        return f"{self.worker_prefix}w{index}"

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
