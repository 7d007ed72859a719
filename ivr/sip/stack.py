"""One pjsua2 Endpoint per process: null audio device, UDP/TCP (and for the dial softphone TLS) transports,
codecs, SRTP, accounts.

pjsip runs in the process's main thread (``threadCnt = 0``, ``mainThreadOnly``); the worker's
asyncio loop calls :meth:`SipStack.poll` so call callbacks run on that same thread. Only the
media clock thread (frame callbacks) is separate.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import pjsua2 as pj
import structlog

from sip_config.models import SipAccount, SipSettings

log = structlog.get_logger(__name__)

TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}


@dataclass
class StackConfig:
    sip: SipSettings
    bind_host: str
    bind_port: int
    rtp_port: int
    user_agent: str = "12368-hotline"
    log_level: int = 1
    accounts: list[SipAccount] = field(default_factory=list)
    contact_override: str | None = None  # e.g. the Kamailio front door, for trunk registrations
    #: a TLS client transport too (the dial softphone calling the front door's TLS port; workers sit behind
    #: Kamailio and never speak TLS themselves)
    tls: bool = False


@contextlib.contextmanager
def _stdout_to_stderr():
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _Account(pj.Account):
    def __init__(self, on_incoming: Callable[[pj.Account, pj.OnIncomingCallParam], None], name: str):
        super().__init__()
        self._on_incoming = on_incoming
        self.name = name

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802 (pjsua2 API)
        try:
            self._on_incoming(self, prm)
        except Exception:
            log.exception("incoming_call_failed", account=self.name)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802
        log.info("registration", account=self.name, code=prm.code, reason=prm.reason,
                 expiration=prm.expiration)


class SipStack:
    def __init__(self, cfg: StackConfig, on_incoming: Callable[[pj.Account, pj.OnIncomingCallParam], None]):
        self.cfg = cfg
        self.ep = pj.Endpoint()
        self._on_incoming = on_incoming
        self.accounts: list[_Account] = []
        self.transport_ids: list[int] = []

    def start(self) -> None:
        c = self.cfg
        ep = self.ep
        with _stdout_to_stderr():  # pjlib prints its start-up banner on stdout before any log config
            ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.uaConfig.maxCalls = c.sip.max_calls_per_worker
        ep_cfg.uaConfig.userAgent = c.user_agent
        ep_cfg.logConfig.level = c.log_level
        ep_cfg.logConfig.consoleLevel = c.log_level
        ep_cfg.logConfig.msgLogging = 0
        ep_cfg.medConfig.clockRate = c.sip.clock_rate
        ep_cfg.medConfig.sndClockRate = c.sip.clock_rate
        ep_cfg.medConfig.channelCount = 1
        ep_cfg.medConfig.noVad = True  # continuous frames: gaps then mean a late clock, not silence
        ep_cfg.medConfig.ecTailLen = 0
        ep_cfg.medConfig.threadCnt = 1
        ep.libInit(ep_cfg)
        for name in c.sip.transports:
            tcfg = pj.TransportConfig()
            tcfg.port = c.bind_port
            tcfg.boundAddress = c.bind_host
            if c.sip.advertised_host:
                tcfg.publicAddress = c.sip.advertised_host
            self.transport_ids.append(ep.transportCreate(TRANSPORTS[name], tcfg))
        if c.tls:
            tcfg = pj.TransportConfig()
            tcfg.boundAddress = c.bind_host
            self.transport_ids.append(ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tcfg))
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._set_codecs()
        self.accounts.append(self._local_account())
        for acc in c.accounts:
            self.accounts.append(self._trunk_account(acc))
        log.info("sip_stack_started", host=c.bind_host, port=c.bind_port, transports=c.sip.transports,
                 clock_rate=c.sip.clock_rate, max_calls=c.sip.max_calls_per_worker)

    def _set_codecs(self) -> None:
        wanted = [x.upper() for x in self.cfg.sip.codecs]
        for info in self.ep.codecEnum2():
            cid = info.codecId  # e.g. "PCMA/8000/1"
            key = "/".join(cid.upper().split("/")[:2])
            prio = 255 - wanted.index(key) if key in wanted else 0
            self.ep.codecSetPriority(cid, prio)

    def _media_cfg(self, acfg: pj.AccountConfig) -> None:
        acfg.mediaConfig.transportConfig.port = self.cfg.rtp_port
        acfg.mediaConfig.transportConfig.portRange = self.cfg.sip.rtp_ports_per_worker
        acfg.mediaConfig.transportConfig.boundAddress = self.cfg.bind_host
        if self.cfg.sip.advertised_host:
            acfg.mediaConfig.transportConfig.publicAddress = self.cfg.sip.advertised_host
        acfg.mediaConfig.srtpUse = SRTP_USE[self.cfg.sip.srtp]
        # 0: SDES keys are accepted on any transport. The workers hear every call over Kamailio's plain leg on
        # worker_host even when the caller used TLS; only the softphone's own TLS hop can insist on it.
        acfg.mediaConfig.srtpSecureSignaling = 1 if self.cfg.tls else 0

    def _local_account(self) -> _Account:
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:12368@{self.cfg.bind_host}:{self.cfg.bind_port}"
        self._media_cfg(acfg)
        acc = _Account(self._on_incoming, "local")
        acc.create(acfg, True)
        return acc

    def _trunk_account(self, a: SipAccount) -> _Account:
        acfg = pj.AccountConfig()
        acfg.idUri = a.id_uri
        acfg.regConfig.registrarUri = a.registrar
        acfg.regConfig.timeoutSec = a.register_timeout_s
        if a.proxy:
            acfg.sipConfig.proxies.append(a.proxy)
        if self.cfg.contact_override:
            acfg.sipConfig.contactForced = self.cfg.contact_override
        if a.username:
            acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", a.realm, a.username, 0, a.password))
        self._media_cfg(acfg)
        acc = _Account(self._on_incoming, a.name)
        acc.create(acfg)
        return acc

    def poll(self, max_ms: int = 0) -> None:
        self.ep.libHandleEvents(max_ms)

    def stop_clock(self) -> None:
        """Stop the conference bridge's clock (the null sound device) before media ports are destroyed: a port
        is left by the bridge only in its C++ destructor, which a clock tick can race (ivr/sip/media_port.py)."""
        try:
            self.ep.audDevManager().setNoDev()
        except Exception:
            log.exception("stop_clock_failed")

    def destroy(self) -> None:
        """Drop accounts and shut pjsua down; every Call/port must already be released."""
        for acc in self.accounts:
            try:
                acc.shutdown()
            except Exception:
                log.exception("account_shutdown_failed")
        self.accounts.clear()
        self.ep.libDestroy()
