"""RTP inactivity: a call whose caller sends no RTP for ``timeout_s`` is hung up (cause ``rtp_timeout``).

Without it, a caller that vanished without a BYE (a dead phone, a NAT that closed, or a flood of INVITEs that never
send media) holds one of the worker's 4 call slots until ``max_call_duration_s``. The worker samples each call's
received packet count (pjsua2 ``getStreamStat(0).rtcp.rxStat.pkt``) about once a second; the count of a call that
has not started its media yet is not judged (the ACK timer covers calls that never confirm)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RtpWatch:
    timeout_s: float
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict)  # call id -> (packets, when they last grew)

    def observe(self, call_id: str, packets: int, now: float) -> bool:
        """Record ``packets`` received so far; True once the count has not grown for ``timeout_s``."""
        last = self._seen.get(call_id)
        if last is None or packets != last[0]:
            self._seen[call_id] = (packets, now)
            return False
        return now - last[1] >= self.timeout_s

    def forget(self, call_id: str) -> None:
        self._seen.pop(call_id, None)

    def keep_only(self, call_ids: set[str]) -> None:
        for gone in set(self._seen) - call_ids:
            del self._seen[gone]
