"""Issue 15, acceptance 2 (HTTP side): 10,000 malformed or hostile HTTP and websocket messages to a real hub
process — broken request lines, oversize headers and bodies, lying Content-Length, bad JSON, wrong content types,
made-up methods, cross-site posts, bad websocket upgrades and frames — then: the hub still runs, its memory is
flat (RSS within 15 MB), and the next login and worker event batch work."""

from __future__ import annotations

import json
import random
import socket
import time

import httpx
import pytest

from tests.ops_support import TOKEN, add_users, login_cookie, ops_hub, post_events, queued_call

pytestmark = pytest.mark.timeout(300)
N = 10_000


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def hostile(rng: random.Random, host: str) -> bytes:
    kind = rng.randrange(14)
    body = json.dumps({"username": "x" * rng.randrange(1, 300), "password": "y"}).encode()
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))  # noise
    if kind == 1:
        return b"GET /" + b"a" * rng.randrange(1000, 70000) + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
    if kind == 2:
        return (f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Big: " + "h" * rng.randrange(9000, 90000)
                + "\r\n\r\n").encode()
    if kind == 3:
        return (f"POST /api/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {rng.randrange(10_000_000, 10**12)}\r\n\r\n").encode() + body
    if kind == 4:
        return (f"POST /api/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body) + 50}\r\n\r\n").encode() + body  # shorter than it says
    if kind == 5:
        junk = b"{" * rng.randrange(1, 5000)
        return (f"POST /api/submit HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(junk)}\r\n\r\n").encode() + junk
    if kind == 6:
        return (f"POST /api/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    if kind == 7:
        method = "".join(rng.choice("ABCDEFGHXYZ") for _ in range(rng.randrange(1, 12)))
        return f"{method} /api/calls HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    if kind == 8:
        return (f"POST /api/kb/import?replace=true HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\n"
                f"Cookie: hotline_session=forged{rng.randrange(10**9)}\r\nContent-Type: multipart/form-data; "
                f"boundary=b\r\nContent-Length: 40\r\n\r\n--b\r\nContent-Disposition: form-data\r\n\r\n").encode()
    if kind == 9:
        return (f"GET /ws/operator HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bm90IGEga2V5\r\n\r\n").encode()
    if kind == 10:
        return (f"GET /internal/worker/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Authorization: Bearer wrong\r\n\r\n").encode() + b"\x81\xff" + rng.randbytes(8)
    if kind == 11:
        return (f"POST /internal/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: 30\r\n\r\n" + '{"v":1,"events":[{"type":"x"}]}'
                ).encode()
    if kind == 12:
        return (f"GET /api/track/12368-2026{rng.randrange(10**4):04d}-{rng.randrange(10**4):04d} HTTP/1.1\r\n"
                f"Host: {host}\r\n\r\n").encode()
    return (f"POST /api/auth/login HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/json\r\n\r\nzz\r\n" + "q" * rng.randrange(100) + "\r\n").encode()


def send(port: int, data: bytes) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(2)
            while s.recv(65536):
                pass
    except OSError:
        pass  # the hub may close on us: that is an answer too


def test_10000_malformed_http_and_websocket_messages_then_login_and_events_work(tmp_path):
    hub = ops_hub(tmp_path / "hub")
    try:
        add_users(hub, ("sup", "supervisor", None))
        pid = hub.proc.pid
        host = f"127.0.0.1:{hub.port}"
        rng = random.Random(15)
        for data in (hostile(rng, host) for _ in range(300)):  # warm-up: allocator and caches settle
            send(hub.port, data)
        before = rss_kb(pid)
        t0 = time.monotonic()
        for _ in range(N):
            send(hub.port, hostile(rng, host))
        took = time.monotonic() - t0
        after = rss_kb(pid)
        assert hub.proc.alive(), hub.proc.log()[-3000:]
        assert httpx.get(f"{hub.url}/healthz", timeout=5).status_code == 200
        assert login_cookie(hub, "sup")
        assert post_events(hub, queued_call("fuzz-after"))["accepted"] > 0
    finally:
        hub.stop()
    print(f"\n{N} hostile messages in {took:.0f} s; hub RSS {before / 1024:.1f} -> {after / 1024:.1f} MB")
    assert after - before < 15 * 1024, (before, after)
