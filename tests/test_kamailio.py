"""Kamailio front door rendered from SipSettings, tested against real peers on loopback.

Kamailio runs from a config rendered into tmp_path; sipp processes stand in for the IVR workers
(tests/sipp/uas_worker.xml) and for the callers (tests/sipp/uac_call.xml).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.hub_tls import generate
from sip_config import kamailio
from sip_config.models import SipSettings

try:
    import sipsupport as ss
except ModuleNotFoundError:  # tests/ became a package
    from tests import sipsupport as ss

pytestmark = [pytest.mark.sip, ss.requires_kamailio, ss.requires_sipp, pytest.mark.timeout(60)]

# quick probing for tests: OPTIONS every second, a silent worker is given up after 1.5 s
FAST_PROBES = {"transaction_timeout_ms": 1500}


def settings(workers: int = 2, **kw: object) -> SipSettings:
    kw.setdefault("probing_interval_s", 1)
    return SipSettings(
        host="127.0.0.1",
        port=ss.free_udp_port(),
        workers=workers,
        worker_base_port=ss.free_port_block(workers),
        **kw,
    )


class FrontDoor:
    """Kamailio + sipp workers; everything stopped by the fixture."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.kam: ss.Kamailio | None = None
        self.workers: list[ss.Worker] = []
        self.sip: SipSettings | None = None

    def start(self, sip: SipSettings, start_workers: bool = True, **render_kwargs: object) -> FrontDoor:
        self.sip = sip
        self.workers = [ss.Worker(sip.worker_port(i), self.run_dir) for i in range(sip.workers)]
        if start_workers:
            for w in self.workers:
                w.start()
        self.kam = ss.start_kamailio(sip, self.run_dir, **render_kwargs)
        self.sip = self.kam.sip
        return self

    @property
    def proxy(self) -> tuple[str, int]:
        assert self.sip is not None
        return (self.sip.host, self.sip.port)

    def call(self, **kw: object):
        return ss.sipp_call(self.proxy, self.run_dir, **kw)

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        if self.kam:
            self.kam.stop()


@pytest.fixture
def front_door(tmp_path: Path) -> Iterator[FrontDoor]:
    fd = FrontDoor(tmp_path)
    try:
        yield fd
    finally:
        fd.stop()


# ---------------------------------------------------------------- rendering


def test_render_files_and_command(tmp_path: Path) -> None:
    sip = SipSettings(
        port=15060,
        workers=3,
        max_calls_per_worker=4,
        worker_base_port=15070,
        advertised_host="192.0.2.10",
        acl=[ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("2001:db8::/32")],
        probing_interval_s=5,
    )
    cfg = kamailio.render(sip, tmp_path / "run")
    assert cfg == (tmp_path / "run" / "kamailio.cfg").resolve()
    ds = (tmp_path / "run" / "dispatcher.list").read_text()
    assert "1 sip:127.0.0.1:15070;transport=udp 0 0 duid=w0;maxload=4" in ds
    assert "1 sip:127.0.0.1:15072;transport=udp 0 0 duid=w2;maxload=4" in ds
    text = cfg.read_text()
    assert "listen=udp:127.0.0.1:15060 advertise 192.0.2.10:15060" in text
    assert "listen=tcp:127.0.0.1:15060 advertise 192.0.2.10:15060" in text
    assert 'is_in_subnet("$si", "10.1.0.0/16,2001:db8::/32")' in text
    assert 'modparam("dispatcher", "ds_ping_interval", 5)' in text
    for name in ("route[REQINIT]", "route[ACL]", "route[WITHINDLG]", "route[DISPATCH]",
                 "failure_route[RTF_DISPATCH]"):  # fmt: skip
        assert name in text
    assert kamailio.check(cfg) == []

    argv = kamailio.command(sip, cfg, tmp_path / "run")
    assert {"-DD", "-E"} <= set(argv)
    run = str((tmp_path / "run").resolve())
    assert argv[argv.index("-P") + 1].startswith(run)
    assert argv[argv.index("-Y") + 1] == run
    assert Path(argv[argv.index("-L") + 1], "dispatcher.so").is_file()

    # custom worker ids, TCP-only, IPv6 front door
    sip6 = SipSettings(host="::1", port=15060, workers=2, worker_base_port=15070, transports=["tcp"])
    cfg6 = kamailio.render(sip6, tmp_path / "run6", worker_ids=["ivr-a", "ivr-b"])
    assert "listen=tcp:[::1]:15060" in cfg6.read_text()
    assert "disable_tcp" not in cfg6.read_text()
    ds6 = (tmp_path / "run6" / "dispatcher.list").read_text()
    assert "sip:127.0.0.1:15071;transport=tcp 0 0 duid=ivr-b;maxload=4" in ds6
    assert kamailio.check(cfg6) == []
    with pytest.raises(ValueError):
        kamailio.render(sip6, tmp_path / "bad", worker_ids=["only-one"])

    broken = tmp_path / "broken.cfg"
    broken.write_text(cfg.read_text().replace("ds_select_dst(", "ds_select_nothing("))
    assert kamailio.check(broken) != []


def test_render_sip_over_tls(tmp_path: Path) -> None:
    """sip.tls: a tls listen socket on tls_port with the given pair, TCP kept on; a clear error without the module."""
    generate(tmp_path / "sip.crt", tmp_path / "sip.key", "127.0.0.1", "12368 hotline sip")
    sip = SipSettings(port=15060, transports=["udp"], tls=True, tls_port=15061, tls_cert=str(tmp_path / "sip.crt"),
                      tls_key=str(tmp_path / "sip.key"))
    modules = kamailio.module_path()
    if not Path(modules, "tls.so").is_file():
        pytest.skip("kamailio-tls-modules not installed")
    text = kamailio.render(sip, tmp_path / "run").read_text()
    assert "listen=tls:127.0.0.1:15061" in text and 'loadmodule "tls.so"' in text and "enable_tls=yes" in text
    assert "disable_tcp" not in text  # TLS runs over Kamailio's TCP layer
    profile = (tmp_path / "run" / "tls.cfg").read_text()
    assert f"certificate = {tmp_path / 'sip.crt'}" in profile and "method = TLSv1.2+" in profile
    assert kamailio.check(tmp_path / "run" / "kamailio.cfg") == []
    (tmp_path / "mods").mkdir()
    with pytest.raises(kamailio.KamailioError, match="kamailio-tls-modules"):
        kamailio.render(sip, tmp_path / "run2", module_dir=str(tmp_path / "mods"))
    with pytest.raises(kamailio.KamailioError, match="tls_cert"):
        kamailio.render(sip.model_copy(update={"tls_cert": None}), tmp_path / "run3")


# ---------------------------------------------------------------- dispatching


def test_calls_are_dispatched_to_both_workers(front_door: FrontDoor) -> None:
    fd = front_door.start(settings(workers=2))
    proc, statuses = fd.call(calls=8, rate=20, limit=4, duration_ms=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert statuses.count(200) == 16  # 8 INVITEs and 8 BYEs answered
    invites = [w.received("INVITE") for w in fd.workers]
    assert sum(invites) == 8 and min(invites) >= 2, invites
    # ACK and BYE came back through the record-routing proxy to the worker that took the call
    assert [w.received("ACK") for w in fd.workers] == invites
    assert [w.received("BYE") for w in fd.workers] == invites
    # the workers were probed with OPTIONS and are active
    assert all(flags.startswith("A") for flags in fd.kam.destinations().values())


def test_call_over_tcp(front_door: FrontDoor) -> None:
    fd = front_door.start(settings(workers=1))
    proc, statuses = fd.call(calls=1, transport="t1")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert fd.workers[0].received("BYE") == 1


def test_maxload_caps_each_worker_and_load_is_released(front_door: FrontDoor) -> None:
    fd = front_door.start(settings(workers=2, max_calls_per_worker=2))
    t0 = time.monotonic()
    proc, statuses = fd.call(calls=5, rate=100, limit=5, duration_ms=2000, name="five")
    # 2 workers x maxload 2: four calls are up, the fifth is refused at once with 503
    assert proc.returncode == 1
    assert statuses.count(503) == 1, statuses
    assert [w.received("INVITE") for w in fd.workers] == [2, 2]
    assert time.monotonic() - t0 < 6
    # the BYEs released the slots: new calls get through again
    proc, statuses = fd.call(calls=4, rate=100, limit=4, duration_ms=200, name="again")
    assert proc.returncode == 0, statuses
    assert [w.received("INVITE") for w in fd.workers] == [4, 4]


def test_concurrent_calls_are_limited_per_source_address(front_door: FrontDoor) -> None:
    """Issue 15: 3 calls at once from one address; the 4th gets 486 although the workers have room (2 x 4)."""
    fd = front_door.start(settings(workers=2, max_calls_per_source=3, max_calls_per_caller=0))
    assert "route(LIMITS)" in (fd.run_dir / "kamailio.cfg").read_text()
    proc, statuses = fd.call(calls=4, rate=100, limit=4, duration_ms=2500, name="src")
    assert statuses.count(486) == 1, statuses
    assert sum(w.received("INVITE") for w in fd.workers) == 3
    # the BYEs freed the count
    proc, statuses = fd.call(calls=3, rate=100, limit=3, duration_ms=200, name="src2")
    assert proc.returncode == 0, statuses


def test_concurrent_calls_are_limited_per_caller_id(front_door: FrontDoor) -> None:
    """Issue 15: one caller ID (the From user) may hold 2 calls at once; the 3rd gets 486."""
    scenario = fd_scenario = front_door.run_dir / "uac_same_caller.xml"
    text = (ss.SIPP_DIR / "uac_call.xml").read_text().replace("sip:caller[call_number]@", "sip:13800000002@")
    fd_scenario.write_text(text)
    fd = front_door.start(settings(workers=2, max_calls_per_caller=2))
    proc, statuses = fd.call(calls=3, rate=100, limit=3, duration_ms=2500, name="same", scenario=str(scenario))
    assert statuses.count(486) == 1, statuses
    assert sum(w.received("INVITE") for w in fd.workers) == 2
    proc, statuses = fd.call(calls=2, rate=100, limit=2, duration_ms=200, name="same2", scenario=str(scenario))
    assert proc.returncode == 0, statuses
    proc, statuses = fd.call(calls=3, rate=100, limit=3, duration_ms=1500, name="others")  # distinct callers
    assert proc.returncode == 0, statuses


def test_unresponsive_worker_fails_over(front_door: FrontDoor) -> None:
    """A worker that stops answering: the INVITE sent to it times out (3 s) and goes to the other."""
    sip = settings(workers=2, probing_interval_s=60)  # no probe during the test
    fd = front_door.start(sip)
    fd.workers[1].stop()
    t0 = time.monotonic()
    # two concurrent calls: call-load puts one on each worker, so one hits the stopped worker
    proc, statuses = fd.call(calls=2, rate=100, limit=2, duration_ms=500)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert fd.workers[0].received("INVITE") == 2
    assert 3.0 <= elapsed < 6.0, elapsed
    log = fd.kam.log()
    assert "timed out, marked inactive" in log and "failover to" in log
    assert fd.kam.destinations()[f"sip:127.0.0.1:{sip.worker_port(1)};transport=udp"].startswith("I")


def test_stopped_worker_is_skipped_via_probing_and_comes_back(front_door: FrontDoor) -> None:
    sip = settings(workers=2)
    fd = front_door.start(sip, **FAST_PROBES)
    fd.workers[1].stop()
    down = fd.kam.wait_destination(sip.worker_port(1), "I", timeout=8)
    proc, _ = fd.call(calls=4, rate=100, limit=4, duration_ms=200)
    assert proc.returncode == 0
    assert fd.workers[0].received("INVITE") == 4
    assert "failover" not in fd.kam.log()  # never tried: probing had taken it out
    before = fd.workers[1].received("INVITE")
    fd.workers[1].start()
    up = fd.kam.wait_destination(sip.worker_port(1), "A", timeout=5)
    proc, _ = fd.call(calls=4, rate=100, limit=4, duration_ms=300)
    assert proc.returncode == 0
    assert fd.workers[1].received("INVITE") > before
    print(f"probing: inactive after {down:.1f}s, active again after {up:.1f}s")


def test_all_workers_down_gives_503(front_door: FrontDoor) -> None:
    sip = settings(workers=2)
    fd = front_door.start(sip, start_workers=False, invite_timeout_ms=1000, **FAST_PROBES)
    # first call, before probing noticed: tried on the workers, timed out, then 503 from failure_route
    t0 = time.monotonic()
    proc, statuses = fd.call(calls=1)
    first = time.monotonic() - t0
    assert proc.returncode == 1
    assert statuses[-1] == 503, statuses
    for w in fd.workers:
        fd.kam.wait_destination(w.port, "I", timeout=8)
    # once both are inactive: 503 at once, stateless, with Retry-After
    t0 = time.monotonic()
    lines = ss.sip_request(fd.proxy, ss.invite_request(*fd.proxy), timeout=2)
    second = time.monotonic() - t0
    assert ss.status_codes(lines)[-1] == 503, lines
    assert second < 0.5
    print(f"all down: first call 503 after {first:.2f}s, next after {second:.3f}s")


# ---------------------------------------------------------------- protection


def test_source_outside_acl_gets_403(front_door: FrontDoor) -> None:
    sip = settings(workers=1, acl=[ipaddress.ip_network("127.0.0.1/32")])
    fd = front_door.start(sip)
    proc, statuses = fd.call(calls=1, local_ip="127.0.0.2")
    assert proc.returncode == 1
    assert statuses == [403], statuses
    assert fd.workers[0].received("INVITE") == 0
    assert "ACL: INVITE from 127.0.0.2" in fd.kam.log()
    # OPTIONS from outside too; the allowed source still gets through
    assert ss.status_codes(ss.sip_request(fd.proxy, ss.options_request(*fd.proxy, src="127.0.0.2"),
                                    src=("127.0.0.2", 0))) == [403]  # fmt: skip
    proc, statuses = fd.call(calls=1, local_ip="127.0.0.1")
    assert proc.returncode == 0, statuses


def test_malformed_requests_are_refused_and_service_continues(front_door: FrontDoor) -> None:
    fd = front_door.start(settings(workers=1))
    proxy = fd.proxy
    # plain garbage: silently dropped by the parser
    assert ss.sip_request(proxy, b"\x00\xffthis is not SIP at all\r\n\r\n", timeout=0.5) == []
    assert ss.sip_request(proxy, b"INVITE\r\n\r\n", timeout=0.5) == []
    # a request with a broken CSeq: 400 from the sanity checks
    bad_cseq = ss.status_codes(ss.sip_request(proxy, ss.invite_request(*proxy, cseq="abc INVITE")))
    assert bad_cseq and 400 <= bad_cseq[-1] < 500, bad_cseq
    # unreadable and exhausted Max-Forwards
    assert ss.status_codes(ss.sip_request(proxy, ss.invite_request(*proxy, max_forwards="x")))[-1] == 400
    assert ss.status_codes(ss.sip_request(proxy, ss.invite_request(*proxy, max_forwards="0")))[-1] == 483
    # a method the hotline does not take
    msg = ss.options_request(*proxy).replace(b"OPTIONS", b"MESSAGE")
    assert ss.status_codes(ss.sip_request(proxy, msg)) == [405]
    # garbage over TCP as well
    with socket.create_connection(proxy, timeout=2) as s:
        s.sendall(b"GARBAGE / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
    assert fd.kam.alive()
    proc, statuses = fd.call(calls=1)
    assert proc.returncode == 0, statuses
    assert fd.workers[0].received("INVITE") == 1


def test_pike_drops_a_flood_from_one_source(front_door: FrontDoor) -> None:
    fd = front_door.start(settings(workers=1), pike_density=10, ban_s=30)
    proxy = fd.proxy
    # Kamailio's own address (the benchmark source) is exempt
    ok = sum(bool(ss.sip_request(proxy, ss.options_request(*proxy), timeout=0.5)) for _ in range(60))
    assert ok == 60
    # another address: answered until the density is exceeded, then silence, and banned
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.3", 0))
        s.settimeout(0.3)
        for _ in range(60):
            s.sendto(ss.options_request(*proxy, src="127.0.0.3"), proxy)
        try:
            while True:
                s.recv(65535)
                answered += 1
        except TimeoutError:
            pass
    assert 5 <= answered < 30, answered
    assert (
        ss.sip_request(proxy, ss.options_request(*proxy, src="127.0.0.3"), src=("127.0.0.3", 0), timeout=0.5)
        == []
    )
    assert "pike blocking" in fd.kam.log()


# ---------------------------------------------------------------- DTMF scenarios


@pytest.mark.parametrize("scenario", ["uac_dtmf_info.xml", "uac_dtmf_2833.xml"])
def test_dtmf_scenarios_run_through_the_front_door(front_door: FrontDoor, scenario: str) -> None:
    fd = front_door.start(settings(workers=1))
    ss.link_pcaps(fd.run_dir)
    messages = fd.run_dir / f"{scenario}.log"
    args = [
        "-sf", str(ss.SIPP_DIR / scenario), "-s", "12368", f"{fd.proxy[0]}:{fd.proxy[1]}",
        "-i", "127.0.0.1", "-p", str(ss.free_udp_port()), "-mp", str(ss.free_udp_port(tcp=False)),
        "-m", "1", "-recv_timeout", "10000", "-default_behaviors", "all,-bye",
        "-set", "digits", "12#", "-set", "gap_ms", "200", "-set", "audio_ms", "600",
        "-trace_msg", "-message_file", str(messages),
    ]  # fmt: skip
    proc = ss.run_sipp(args, timeout=20, cwd=fd.run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:]
    w = fd.workers[0]
    assert w.received("ACK") == 1 and w.received("BYE") == 1
    if scenario == "uac_dtmf_info.xml":
        assert w.received("INFO") == 3
        text = w.messages.read_text()
        for d in "12#":
            assert f"Signal={d}" in text
    else:
        assert w.received("INFO") == 0
