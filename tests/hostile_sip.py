"""Broken and hostile SIP traffic for the fault test and bench/hostile_sip.py: messages, a sender that names
the reply each one got, and an INVITE flood from an address outside the ACL."""

from __future__ import annotations

import os
import re
import socket

KINDS = 14


def hostile_messages(host: str, port: int, count: int) -> list[bytes]:
    """Broken and hostile SIP: noise, bad CSeq/Via, oversize bodies and headers, lying Content-Length, huge URIs,
    Max-Forwards 0, fragments, bad SDP, re-INVITE/BYE/REFER (with Replaces) for dialogs that do not exist (spoofed
    in-dialog requests), methods the hotline does not serve. Kind ``n % KINDS``."""
    msgs: list[bytes] = []
    base = (f"INVITE sip:12368@{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:5999;branch=z9hG4bK{{n}}\r\n"
            f"From: <sip:x@{host}>;tag={{n}}\r\nTo: <sip:12368@{host}>\r\nCall-ID: hostile-{{n}}\r\n"
            f"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:x@{host}:5999>\r\n")
    for n in range(count):
        kind = n % KINDS
        if kind == 0:
            msgs.append(os.urandom(200 + n % 300))
        elif kind == 1:
            bad_cseq = base.format(n=n).replace("CSeq: 1 INVITE", "CSeq: banana")
            msgs.append(bad_cseq.encode() + b"Content-Length: 0\r\n\r\n")
        elif kind == 2:
            msgs.append(base.format(n=n).replace("Via: SIP/2.0/UDP", "Via: SIP/9.9/XYZ").encode() + b"\r\n")
        elif kind == 3:
            body = b"v=0\r\n" + b"a=x\r\n" * 9000
            msgs.append(base.format(n=n).encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:60000])
        elif kind == 4:
            msgs.append(base.format(n=n).encode() + b"Content-Length: 999999\r\n\r\nv=0\r\n")
        elif kind == 5:
            msgs.append(b"INVITE sip:" + b"A" * 4000 + b" SIP/2.0\r\n\r\n")
        elif kind == 6:
            msgs.append(base.format(n=n).replace("Max-Forwards: 70", "Max-Forwards: 0").encode()
                        + b"Content-Length: 0\r\n\r\n")
        elif kind == 7:
            head = base.format(n=n).replace("INVITE", "OPTIONS").encode()
            msgs.append(head + b"".join([b"X-H: " + b"B" * 100 + b"\r\n"] * 300) + b"Content-Length: 0\r\n\r\n")
        elif kind == 8:  # a fragment: the first part of a request, cut anywhere
            whole = base.format(n=n).encode() + b"Content-Length: 0\r\n\r\n"
            msgs.append(whole[: 20 + n % (len(whole) - 40)])
        elif kind == 9:  # an SDP that parses as nothing usable
            sdp = (b"v=0\r\no=- 1 1 IN IP4 999.1.1.1\r\ns=-\r\nc=IN IP4 nowhere\r\nt=0 0\r\n"
                   b"m=audio 99999 RTP/AVP 256 -1 x\r\na=rtpmap:256 \xff\xfe/0\r\n")
            msgs.append(base.format(n=n).replace("Contact:", "Content-Type: application/sdp\r\nContact:").encode()
                        + f"Content-Length: {len(sdp)}\r\n\r\n".encode() + sdp)
        elif kind in (10, 11, 12):  # spoofed in-dialog requests: re-INVITE, BYE, REFER with Replaces
            method = {10: "INVITE", 11: "BYE", 12: "REFER"}[kind]
            msg = base.format(n=n).replace("To: <sip:12368@" + host + ">", f"To: <sip:12368@{host}>;tag=spoof{n}")
            msg = msg.replace("INVITE sip:", f"{method} sip:", 1).replace("CSeq: 1 INVITE", f"CSeq: 2 {method}")
            if kind == 12:
                msg += (f"Refer-To: <sip:evil@{host}?Replaces=hostile-1%3Bto-tag%3Da%3Bfrom-tag%3Db>\r\n"
                        f"Referred-By: <sip:x@{host}>\r\n")
            msgs.append(msg.encode() + b"Content-Length: 0\r\n\r\n")
        else:  # methods the hotline does not serve
            method = ("SUBSCRIBE", "NOTIFY", "MESSAGE", "PUBLISH", "UPDATE", "PRACK")[n % 6]
            msg = base.format(n=n).replace("INVITE sip:", f"{method} sip:", 1).replace("CSeq: 1 INVITE",
                                                                                     f"CSeq: 1 {method}")
            msgs.append(msg.encode() + b"Content-Length: 0\r\n\r\n")
    return msgs


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def send(sock: socket.socket, messages: list[bytes], targets: list[int], replies: dict[str, int]) -> None:
    """Sends message i to ``targets[i % len(targets)]`` and counts the replies by the request's kind, where it
    went (``door`` = the first target) and the status code. Replies may arrive late: each names its request."""
    for i, m in enumerate(messages):
        sock.sendto(m, ("127.0.0.1", targets[i % len(targets)]))
        try:
            while True:
                data = sock.recv(65535)
                code = data.split(b" ", 2)[1].decode() if data.startswith(b"SIP/2.0") else "other"
                found = re.search(rb"Call-ID: hostile-(\d+)", data)
                if found:
                    n = int(found.group(1))
                    key = f"kind{n % KINDS}:{'door' if n % len(targets) == 0 else 'worker'}:{code}"
                else:
                    key = f"unknown:{code}"
                replies[key] = replies.get(key, 0) + 1
        except (TimeoutError, IndexError):
            pass


def refused_all(replies: dict[str, int]) -> bool:
    """Only the well-formed (if oversized) OPTIONS may succeed; every broken request is refused."""
    return not any(k.split(":")[-1].startswith("2") for k in replies if not k.startswith("kind7:"))


def free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def flood_from_disallowed(sip_port: int, worker_port: int) -> dict[str, int]:
    """200 INVITEs from 127.0.0.2 (the ACL allows only 127.0.0.1/32), to the front door and a worker."""
    seen: dict[str, int] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))
        lport = s.getsockname()[1]
        s.settimeout(0.05)
        for n in range(200):
            port = sip_port if n % 2 == 0 else worker_port
            msg = (f"INVITE sip:12368@127.0.0.1:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.2:{lport};branch=z9hG4bKflood{n}\r\n"
                   f"From: <sip:flood@127.0.0.2>;tag=f{n}\r\nTo: <sip:12368@127.0.0.1>\r\n"
                   f"Call-ID: flood-{n}@127.0.0.2\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                   f"Contact: <sip:flood@127.0.0.2:{lport}>\r\nContent-Length: 0\r\n\r\n")
            s.sendto(msg.encode(), ("127.0.0.1", port))
            answered = False
            try:
                while True:
                    data = s.recv(65535)
                    code = data.split(b" ", 2)[1].decode()
                    if code != "100":
                        seen[code] = seen.get(code, 0) + 1
                        answered = True
            except TimeoutError:
                if not answered:
                    seen["silence"] = seen.get("silence", 0) + 1
    return seen


