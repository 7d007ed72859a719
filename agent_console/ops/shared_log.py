"""The hub-wide event log in Redis, shared by several hubs (issue 17): one ``seq`` and one ``epoch`` for all.

Same interface as :class:`~agent_console.ops.eventlog.EventLog`. An append is one Lua script (``INCR`` of the
seq key, ``XADD`` with that seq as the stream id), so two hubs never hand out one seq twice or out of order.
Every hub tails the stream in a thread and mirrors the last ``capacity`` entries in memory: browsers on any hub
read the same entries in the same order, and one that reconnects through another hub resumes from its seq
without a gap or a duplicate. ``last_seq`` is the last entry this hub has mirrored (what it can serve).

``together(key, value)`` sends the appends made inside it in one script that also sets ``key``: the deciding hub
marks the input it applied that way, so a hub that takes over after it died never applies an input again whose
events browsers have already seen (nor misses one whose events they have not).

While Redis is unreachable, appends wait in order in a local queue and go out when it answers again (the tail
thread retries every second); the hub keeps serving what it mirrored.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterator

import redis
from pydantic import BaseModel

from agent_console.ops.eventlog import DEFAULT_CAPACITY, Entry, Listeners

log = logging.getLogger(__name__)

# ARGV: capacity, a new epoch's name, then items of four: ("e", roles, users, payload) an entry, ("m", key index,
# value, "") a mark (SET) made in the same script as the entries before it, ("g", key index, value, "") the start
# of a fenced group: unless that key holds that value (the lease is still the sender's), the group's entries and
# its mark are left out. Returns the last seq and how many groups were left out.
_APPEND = """
if redis.call('SET', KEYS[3], ARGV[2], 'NX') then redis.call('DEL', KEYS[1], KEYS[2]) end
local seq, skip, dropped = 0, false, 0
for i = 3, #ARGV, 4 do
  local kind = ARGV[i]
  if kind == 'g' then
    skip = redis.call('GET', KEYS[tonumber(ARGV[i + 1])]) ~= ARGV[i + 2]
    if skip then dropped = dropped + 1 end
  elseif kind == 'm' then
    if not skip then redis.call('SET', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2]) end
    skip = false
  elseif not skip then
    seq = redis.call('INCR', KEYS[1])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'r', ARGV[i + 1], 'u', ARGV[i + 2],
               'p', ARGV[i + 3])
  end
end
return {seq, dropped}
"""
BATCH = 200  # items per script call
RETRY_S = 1.0


def _entry(stream_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    seq = int((stream_id.decode() if isinstance(stream_id, bytes) else stream_id).split("-")[0])
    roles = frozenset(r for r in fields[b"r"].decode().split(",") if r)
    users = frozenset(int(u) for u in fields[b"u"].decode().split(",") if u)
    payload = json.loads(fields[b"p"])
    payload["seq"] = seq
    return Entry(seq, roles, users, payload)


class RedisEventLog:
    def __init__(self, client: redis.Redis, *, prefix: str = "hotline:", capacity: int = DEFAULT_CAPACITY,
                 block_ms: int = 1000):
        """``client`` without ``decode_responses``; keys are ``{prefix}events`` (the stream), ``{prefix}seq`` and
        ``{prefix}epoch``. Starts mirroring at once (the last ``capacity`` entries, then the tail)."""
        self._redis = client
        self._keys = [f"{prefix}seq", f"{prefix}events", f"{prefix}epoch"]
        self._capacity = capacity
        self._block_ms = block_ms
        self._script = client.register_script(_APPEND)
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._listeners = Listeners()
        self._unsent: deque[tuple[str, str, str, str]] = deque()  # _APPEND's items
        self._send_lock = threading.Lock()
        self._held = 0  # open together() blocks: nothing is sent meanwhile
        self._stop = threading.Event()
        self._down = False
        self._appended = 0
        self.epoch = ""
        self._resync()
        self._thread = threading.Thread(target=self._tail, name="redis-eventlog", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the EventLog interface
    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._entries[-1].seq if self._entries else 0

    @property
    def head_seq(self) -> int:
        """The last seq this hub appended or mirrored: a snapshot taken now shows every entry up to it (one not
        mirrored yet reaches the browser through the tail, not twice)."""
        with self._lock:
            return max(self._entries[-1].seq if self._entries else 0, self._appended)

    def append(self, event: BaseModel, *, roles: frozenset[str] | set[str] = frozenset(),
               users: frozenset[int] | set[int] = frozenset()) -> None:
        """Queue the event for the shared stream and send what is queued; it reaches this hub's browsers (and
        every other hub's) through the tail, in seq order."""
        item = ("e", ",".join(sorted(roles)), ",".join(str(u) for u in sorted(users)),
                json.dumps(event.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")))
        with self._send_lock:
            self._unsent.append(item)
        if not self._down:  # while Redis is down the tail thread retries: the hub's lock is not held for a timeout
            self._flush()

    @contextlib.contextmanager
    def together(self, key: str, value: str, fence: tuple[str, str] | None = None) -> Iterator[None]:
        """The appends made inside (by any thread) reach Redis in one script that ends with ``SET key value``:
        whoever reads ``key`` knows every entry made before the mark is in the log, and none after it. With
        ``fence`` (a key and the value it must hold: the deciding hub's lease), the group goes out only while
        that holds: a hub that lost the lease while Redis was away does not send, when it comes back, entries and
        a mark the next deciding hub has made again (or moved past)."""
        with self._send_lock:
            if fence is not None:
                self._unsent.append(("g", fence[0], fence[1], ""))
            self._held += 1
        try:
            yield
        finally:
            with self._send_lock:
                self._held -= 1
                self._unsent.append(("m", key, value, ""))
            if not self._down:
                self._flush()

    def since(self, seq: int) -> list[Entry] | None:
        """Mirrored entries after ``seq`` (oldest first); None when some of them are no longer kept."""
        with self._lock:
            last = self._entries[-1].seq if self._entries else 0
            first = self._entries[0].seq if self._entries else last + 1
            ahead = seq > last
            if not ahead and seq < first - 1:
                return None
            if not ahead:  # seqs are consecutive (one script hands them out and adds the entry)
                return list(itertools.islice(self._entries, seq - first + 1, None))
        # seen on another hub, not mirrored here yet: the tail brings it (a seq Redis never gave: start again)
        return [] if seq <= self._shared_seq() else None

    def subscribe(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``notify`` (from the tail thread) after new entries are mirrored; returns the unsubscribe function."""
        return self._listeners.subscribe(notify)

    def _shared_seq(self) -> int:
        try:
            return int(self._redis.get(self._keys[0]) or 0)
        except redis.RedisError:
            return 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._block_ms / 1000 + 2)

    # ------------------------------------------------------------------ inside
    def _flush(self) -> bool:
        """Send the queued appends in order; False while Redis does not answer (they stay queued)."""
        with self._send_lock:
            while self._unsent and not self._held:
                # up to BATCH items, and on to the next mark: a group and its mark go in one call
                n = min(len(self._unsent), BATCH)
                n = next((i + 1 for i, item in enumerate(itertools.islice(self._unsent, n - 1, None), n - 1)
                          if item[0] == "m"), n)
                items = list(itertools.islice(self._unsent, n))
                keys, args = list(self._keys), [self._capacity, secrets.token_hex(6)]
                for item in items:
                    if item[0] in ("m", "g"):
                        keys.append(item[1])
                        item = (item[0], str(len(keys)), item[2], "")
                    args.extend(item)
                try:
                    seq, dropped = (int(x) for x in self._script(keys=keys, args=args))
                except redis.RedisError as e:
                    if not self._down:
                        log.warning("event log: Redis unreachable, events wait: %s", e)
                    self._down = True
                    return False
                for _ in items:
                    self._unsent.popleft()
                if dropped:
                    log.warning("event log: %d input(s) applied here were not sent: this hub no longer decides, "
                                "the deciding hub applies them again", dropped)
                with self._lock:
                    self._appended = max(self._appended, seq)
        self._down = False
        return True

    def _tail(self) -> None:
        away = False
        while not self._stop.is_set():
            try:
                if self._unsent and not self._flush():
                    self._stop.wait(RETRY_S)
                    continue
                after = f"{self.last_seq}-0"
                got = self._redis.xread({self._keys[1]: after}, count=500, block=self._block_ms)
                resynced = False
                if self._redis.get(self._keys[2]) != self.epoch.encode():
                    self._resync()  # Redis lost its data (or was replaced): the seqs start again
                    got, resynced = [], True
            except redis.RedisError as e:
                if not away:  # once per outage, not every second
                    log.warning("event log: Redis unreachable, serving what is mirrored: %s", e)
                away = True
                self._stop.wait(RETRY_S)
                continue
            if away:
                log.info("event log: Redis answers again")
            away = False
            new = [_entry(i, f) for _, items in got for i, f in items]
            if new:
                with self._lock:
                    self._entries.extend(new)
            if new or resynced:
                self._listeners.notify_all()

    def _resync(self) -> None:
        """Take the log's epoch (naming it if this is the first hub of a new log) and mirror what the stream keeps."""
        self._redis.set(self._keys[2], secrets.token_hex(6), nx=True)
        epoch = self._redis.get(self._keys[2]).decode()
        kept = self._redis.xrevrange(self._keys[1], count=self._capacity)
        with self._lock:
            if epoch != self.epoch and self.epoch:
                log.warning("event log: new epoch %s (was %s): Redis lost its data", epoch, self.epoch)
            if epoch != self.epoch:
                self._appended = 0
            self.epoch = epoch
            self._entries.clear()
            self._entries.extend(_entry(i, f) for i, f in reversed(kept))
