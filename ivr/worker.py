"""An IVR worker process: one pjsua2 Endpoint, at most ``max_calls_per_worker`` calls.

The asyncio loop owns the main thread and polls pjsua between its other tasks, so every call
callback runs on this thread; frame callbacks arrive from pjmedia's clock thread (see
ivr/sip/media_port.py). SIGTERM drains: new calls get 503, running calls may finish within
``drain_timeout_s``, then they are hung up; the last words of talks with a person that just ended are still
transcribed before the process stops (ivr/bridged.py, bounded by the supervisor's stop budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pjsua2 as pj
import structlog

from ivr import bridged
from ivr.audio import PromptLibrary
from ivr.call_flow import menu_conversation
from ivr.call_session import CallSession
from ivr.callback import CallbackSession
from ivr.contract import (
    CallAnswered,
    CallbackCommand,
    CallbackOutcome,
    CallEnded,
    CallOffered,
    CallRejected,
    HubCommand,
)
from ivr.flow.services import CallServices
from ivr.hub_commands import HubLink
from ivr.menu_store import MenuStore
from ivr.publisher import EventPublisher, Spool
from ivr.recording import resume_transcripts
from ivr.rtp_watch import RtpWatch
from ivr.settings import STOP_GRACE_S, IvrSettings, OfficeHours
from ivr.sip import frames
from ivr.sip.call import SipCall
from ivr.sip.media_port import CallMediaPort, PortPool
from ivr.sip.stack import SipStack, StackConfig
from ivr.speech_hosts import SpeechHosts
from ivr.voice_cache import VoiceCache
from sip_config.models import SipSettings
from work_orders.calendar import WorkCalendar

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 0.005
RETIRE_AFTER_S = 2.0  # pjsua objects of an ended call are dropped this long after DISCONNECTED
RTP_CHECK_S = 1.0  # how often received RTP is sampled for ivr.rtp_timeout_s
STOP_RESERVE_S = 4.0  # of the supervisor's stop budget, kept for sending the last events (publisher.drain: 3 s)
ACK_TIMEOUT_S = 6.0  # a 200 OK never ACKed frees its slot after this, not after pjsip's 32 s


@dataclass
class WorkerConfig:
    name: str
    sip: SipSettings
    ivr: IvrSettings
    bind_host: str
    bind_port: int
    rtp_port: int
    spool_dir: Path
    hub_url: str | None = None
    hub_token: str | None = None
    register_accounts: bool = False
    contact_override: str | None = None
    pjsip_log_level: int = 1
    speech_urls: tuple[str, ...] = ()  # speech services in order of preference (ivr/speech_hosts.py)
    speech_probe_s: float = 2.0  # with more than one: how often each is probed
    recordings_dir: Path | None = None
    #: working days (China's schedule + the court's holiday file) for ivr.working_hours
    calendar: WorkCalendar | None = None


def _safe_to_free(call: object) -> bool:
    """pjsua2's Call destructor unhooks and hangs up whatever call now holds the object's old pjsua call id
    (ids are reused: a dropped call cut off about one caller in nine). So an ended Call is freed only while
    its id is idle and nothing else refers to it, so that it dies here and not in a later garbage collection."""
    if call is None:
        return True
    try:
        if call.isActive():  # type: ignore[attr-defined]
            return False
    except Exception:  # noqa: BLE001 - a Call pjsua no longer knows is idle
        pass
    return sys.getrefcount(call) <= 3  # the retired tuple, the caller's variable, getrefcount's argument


def _index(name: str) -> int:
    """A worker's number from its name (``w3``, ``b-w3``): where it starts in the list of speech hosts."""
    digits = name[len(name.rstrip("0123456789")):]
    return int(digits) if digits else 0


class _Rejected:
    """Listener for a call refused in onIncomingCall: only waits for it to disconnect."""

    def __init__(self, worker: Worker, call: SipCall):
        self.worker, self.call = worker, call

    def on_media_active(self, audio) -> None: ...
    def on_digit(self, digit: str, method: str) -> None: ...
    def on_confirmed(self) -> None: ...

    def on_disconnected(self, status_code: int, reason: str) -> None:
        self.worker.retire(self.call, None)


class Worker:
    def __init__(self, cfg: WorkerConfig):
        self.cfg = cfg
        self.prompts = PromptLibrary(cfg.ivr.prompts_dir, cfg.sip.clock_rate)
        self.menus = MenuStore(cfg.ivr.menu_file, self.prompts)
        self.spool = Spool(cfg.spool_dir, cfg.name)
        self.publisher = EventPublisher(self.spool, cfg.hub_url, cfg.hub_token)
        self.sessions: dict[str, CallSession] = {}
        self._retired: list[tuple[float, object, object]] = []
        self.ports = PortPool(cfg.sip.clock_rate)  # media ports are reused, never destroyed mid-run
        self.draining = False
        self._stop = asyncio.Event()
        self.stack: SipStack | None = None
        self.legs = 0  # outbound calls to operators: each holds one of the process's call slots
        self.speech = SpeechHosts(cfg.speech_urls, first=_index(cfg.name)) if cfg.speech_urls else None
        self.office_hours = OfficeHours(cfg.ivr.working_hours, cfg.calendar or WorkCalendar())
        self.voice_cache = VoiceCache()  # knowledge-base answers' audio, shared by this worker's calls
        self.hub_link = (HubLink(cfg.hub_url, cfg.hub_token, cfg.name, lambda: list(self.sessions), self.dispatch)
                         if cfg.hub_url and cfg.hub_token else None)

    def emit(self, event_cls, **fields) -> None:
        self.publisher.emit(event_cls(worker=self.cfg.name, **fields))

    # ---- incoming calls (main thread, inside poll) ------------------------------------------
    def on_incoming(self, account: pj.Account, prm: pj.OnIncomingCallParam) -> None:
        call = SipCall(account, prm.callId)
        ci = call.getInfo()
        source = prm.rdata.srcAddress
        if not self.cfg.sip.allows(source):
            log.warning("call_refused_acl", source=source)
            self._reject(call, 403, "Forbidden")
            return
        call_id = uuid.uuid4().hex
        self.emit(CallOffered, call_id=call_id, caller=ci.remoteUri, callee=ci.localUri, source=source,
                  sip_call_id=ci.callIdString)
        if ci.remAudioCount < 1:  # no usable audio offer (or an unparseable SDP body)
            self.emit(CallRejected, call_id=call_id, status_code=488, reason="no_audio_offer")
            self._reject(call, 488, "Not Acceptable Here")
            return
        if self.draining or not self._slot_free():
            code, reason = (503, "draining") if self.draining else (486, "busy")
            self.emit(CallRejected, call_id=call_id, status_code=code, reason=reason)
            self._reject(call, code, reason)
            return
        ivr = self.cfg.ivr
        recordings = self._recordings()
        services = CallServices(speech_url=self.speech, hub_url=self.cfg.hub_url, hub_token=self.cfg.hub_token,
                                caller=ci.remoteUri, worker_name=self.cfg.name, hub_link=self.hub_link,
                                working_hours=self.office_hours, record_bridged_calls=ivr.record_bridged_calls,
                                operator_transfer=ivr.operator_transfer,
                                refer_fallback_bridge=ivr.refer_fallback_bridge, recordings_dir=recordings,
                                voice_cache=self.voice_cache)
        conversation = menu_conversation(self.menus.current, self.prompts, services, ivr.max_call_duration_s)
        session = CallSession(call, call_id, self.emit, self.cfg.sip.clock_rate, ivr.frame_gap_ms, self._closed,
                              conversation, host=self, ports=self.ports)
        self.sessions[call_id] = session
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)
        self.emit(CallAnswered, call_id=call_id)
        session.ack_timer = asyncio.get_running_loop().call_later(ACK_TIMEOUT_S, session.check_confirmed)
        log.info("call_answered", call_id=call_id, source=source, active=len(self.sessions))

    def _recordings(self) -> Path:
        return self.cfg.recordings_dir or self.cfg.spool_dir.parent / "recordings"

    # ---- call slots and operator legs (ivr.bridge.LegHost) ----------------------------------
    def _slot_free(self) -> bool:
        return len(self.sessions) + self.legs < self.cfg.sip.max_calls_per_worker

    def reserve_leg(self) -> bool:
        if self.draining or not self._slot_free():
            return False
        self.legs += 1
        return True

    def release_leg(self) -> None:
        self.legs = max(0, self.legs - 1)

    def leg_account(self) -> pj.Account:
        return self.stack.accounts[0]

    # ---- commands from the hub ----------------------------------------------------------------
    def dispatch(self, cmd: HubCommand) -> None:
        if isinstance(cmd, CallbackCommand):
            self.place_callback(cmd)
            return
        session = self.sessions.get(cmd.call_id)
        if session is None:
            log.info("command_for_unknown_call", type=cmd.type, call_id=cmd.call_id)
            return
        session.on_command(cmd)

    def place_callback(self, cmd: CallbackCommand) -> None:
        """回访 (ivr/callback.py): call the citizen from the operator leg's account, in one of this worker's call
        slots; none free (or draining) -> CallbackOutcome failed without a call, and the hub tries again later."""
        if cmd.call_id in self.sessions:
            log.info("callback_duplicate", call_id=cmd.call_id)
            return
        if self.draining or not self._slot_free():
            self.emit(CallbackOutcome, call_id=cmd.call_id, order_id=cmd.order_id, attempt=cmd.attempt,
                      outcome="failed", reason="draining" if self.draining else "no_slot")
            log.info("callback_refused", call_id=cmd.call_id, order=cmd.order_number, draining=self.draining)
            return
        c, account = self.cfg, self.leg_account()
        session = CallbackSession(SipCall(account), cmd, self.prompts,
                                  CallServices(speech_url=self.speech, hub_url=c.hub_url, hub_token=c.hub_token),
                                  self.emit, c.sip.clock_rate, c.ivr.frame_gap_ms, self._closed, host=self,
                                  ports=self.ports)
        self.sessions[cmd.call_id] = session
        session.dial(account.getInfo().uri, f"{c.bind_host}:{c.bind_port}")

    def _reject(self, call: SipCall, code: int, reason: str) -> None:
        # Answering with an error from inside onIncomingCall trips a pjsip assertion
        # (pjsip_rx_data_free_cloned) for INVITEs without a usable SDP: send it from the loop instead.
        call.listener = _Rejected(self, call)
        asyncio.get_running_loop().call_soon(self._send_reject, call, code, reason)

    def _send_reject(self, call: SipCall, code: int, reason: str) -> None:
        if call.disconnected:
            return
        op = pj.CallOpParam()
        op.statusCode = code
        op.reason = reason
        try:
            call.hangup(op)
        except pj.Error as e:
            log.warning("reject_failed", code=code, error=e.info())

    def _closed(self, session: CallSession) -> None:
        if session.ack_timer is not None:  # a pending timer would keep the session's pjsua objects alive
            session.ack_timer.cancel()
            session.ack_timer = None
        self.sessions.pop(session.call_id, None)
        self.retire(session.call, session.port)
        log.info("call_closed", call_id=session.call_id, active=len(self.sessions), media_ports=self.ports.created)

    def retire(self, call: object, port: CallMediaPort | None) -> None:
        """Keep pjsua objects of an ended call alive a little longer (teardown crash, see notes); then the call
        is freed and its media port goes back to the pool."""
        if hasattr(call, "listener"):
            call.listener = None  # no callbacks after DISCONNECTED; lets the session go without a GC cycle
        self._retired.append((asyncio.get_running_loop().time() + RETIRE_AFTER_S, call, port))

    def _reap(self, force: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        keep, done = [], []
        for r in self._retired:
            (keep if not force and (r[0] > now or not _safe_to_free(r[1])) else done).append(r)
        for _, _, port in done:
            if port is not None:
                self.ports.give_back(port)
        self._retired = keep  # the calls lose their last reference here, outside any callback

    # ---- lifecycle --------------------------------------------------------------------------
    async def _rtp_watch(self) -> None:
        """Hang up calls whose caller has sent no RTP for ``ivr.rtp_timeout_s`` (ivr/rtp_watch.py)."""
        watch = RtpWatch(self.cfg.ivr.rtp_timeout_s)
        while True:
            await asyncio.sleep(RTP_CHECK_S)
            self._check_rtp(watch)

    def _check_rtp(self, watch: RtpWatch) -> None:
        # A function of its own so that no session (nor its pjsua2 Call) stays referenced from a suspended
        # coroutine frame between samples: a Call must die when the worker retires it (see _safe_to_free).
        loop = asyncio.get_running_loop()
        watch.keep_only(set(self.sessions))
        for call_id, session in list(self.sessions.items()):
            if session.ended or not session.media_ready.is_set():
                continue
            try:
                packets = session.call.getStreamStat(0).rtcp.rxStat.pkt
            except Exception:  # noqa: BLE001 - no stream (yet, or any more): nothing to judge
                continue
            if watch.observe(call_id, packets, loop.time()):
                watch.forget(call_id)
                log.warning("rtp_timeout", call_id=call_id, timeout_s=watch.timeout_s, packets=packets)
                loop.create_task(session.hangup("rtp_timeout"))

    async def _menu_watch(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.ivr.menu_reload_interval_s)
            self.menus.check()

    def request_stop(self) -> None:
        if not self.draining:
            log.info("worker_draining", active=len(self.sessions))
        self.draining = True
        self._stop.set()

    async def run(self) -> int:
        frames.self_test()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        c = self.cfg
        self.stack = SipStack(StackConfig(sip=c.sip, bind_host=c.bind_host, bind_port=c.bind_port,
                                          rtp_port=c.rtp_port, log_level=c.pjsip_log_level,
                                          accounts=c.sip.accounts if c.register_accounts else [],
                                          contact_override=c.contact_override), self.on_incoming)
        tasks = [loop.create_task(self.publisher.run()), loop.create_task(self._menu_watch())]
        if c.ivr.rtp_timeout_s > 0:
            tasks.append(loop.create_task(self._rtp_watch()))
        if self.speech is not None and len(self.speech.urls) > 1:
            tasks.append(loop.create_task(self.speech.probe_forever(c.speech_probe_s)))
        # messages an earlier run of this worker reported but did not finish transcribing (killed meanwhile)
        resumed = resume_transcripts(self._recordings(), c.name, self.speech, self.emit)
        if resumed:
            log.info("transcripts_resumed", count=resumed)
        if self.hub_link is not None:
            tasks.append(loop.create_task(self.hub_link.run()))
        try:
            self.stack.start()
            log.info("worker_ready", worker=c.name, port=c.bind_port, menu=str(c.ivr.menu_file))
            await self._poll_until(lambda: self._stop.is_set())
            stopping = loop.time()
            await self._drain()
            await self._finish_transcripts(c.ivr.drain_timeout_s + STOP_GRACE_S - (loop.time() - stopping))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # their frames let go of sessions before teardown
            await self.publisher.drain(3.0)
            self._shutdown_stack()
        return 0

    async def _poll_until(self, done, timeout: float | None = None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        next_reap = 0.0
        while not done():
            now = loop.time()
            if deadline is not None and now > deadline:
                return False
            self.stack.poll(0)
            if now >= next_reap and self._retired:
                self._reap()
                next_reap = now + 0.5
            await asyncio.sleep(POLL_INTERVAL_S)
        return True

    async def _drain(self) -> None:
        await self._poll_until(lambda: not self.sessions, self.cfg.ivr.drain_timeout_s)
        for s in list(self.sessions.values()):
            await s.hangup("drained")
        await self._poll_until(lambda: not self.sessions, 3.0)
        for s in list(self.sessions.values()):  # no BYE answer: close the records ourselves
            self.emit(CallEnded, call_id=s.call_id, cause="drained", side="system", media=s.port.stats)
            self._closed(s)

    async def _finish_transcripts(self, budget_s: float) -> None:
        """The last words of talks with a person that just ended are still being decoded: their lines would be lost
        with the process, so wait for them within ``budget_s`` (what is left of the supervisor's stop budget, less
        what sending the last events needs); then stop those left (they must end before the SIP stack)."""
        if not bridged.flushing():
            return
        wait_s = max(0.0, min(bridged.FLUSH_S, budget_s - STOP_RESERVE_S))
        log.info("worker_waiting_for_transcripts", count=bridged.flushing(), up_to_s=round(wait_s, 1))
        await self._poll_until(lambda: not bridged.flushing(), wait_s)
        if bridged.flushing():
            log.warning("worker_transcripts_cut", count=bridged.flushing())
            await bridged.stop_flushing()

    def _shutdown_stack(self) -> None:
        if self.stack is None:
            return
        with contextlib.suppress(Exception):
            self.stack.ep.hangupAllCalls()
        for _ in range(20):
            with contextlib.suppress(Exception):
                self.stack.ep.libHandleEvents(10)
        self.sessions.clear()
        self.stack.stop_clock()
        self._reap(force=True)
        self.ports.clear()
        gc.collect()
        self.stack.destroy()
        self.spool.close()


def run_worker(cfg: WorkerConfig) -> int:
    return asyncio.run(Worker(cfg).run())
