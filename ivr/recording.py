"""Recorded messages (beep, speak, # or silence ends it) and the stereo recording of a bridged call.

A message is written to ``<recordings>/<call_id>-<purpose>.wav`` (PCM16 mono at the bridge clock)
and announced with ``MessageRecorded`` at once; the speech service's transcript follows as
``MessageTranscribed`` (resumed after a worker restart, so a crash during transcription loses nothing).
A caller who hangs up while speaking has still left a message: what was recorded so far is kept
and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import structlog

from ivr.contract import DigitsReceived, MessageRecorded, MessageTranscribed
from ivr.flow.context import FlowContext
from ivr.keypad import read_key
from ivr.speech_client import SpeechUnavailable, transcribe_pcm
from ivr.speech_hosts import SpeechTarget

log = structlog.get_logger(__name__)

SPEECH_RMS = 300  # a 100 ms chunk louder than this (about -40 dBFS) counts as someone speaking
_finishing: set[asyncio.Task] = set()  # transcriptions that outlive their call
CASE_PURPOSES = ("contact_judge", "urge")


@dataclass(frozen=True)
class RecordOptions:
    purpose: str
    max_s: float = 60.0
    end_silence_s: float = 3.0
    no_input_s: float = 8.0
    beep: bool = True
    stop_key: str = "#"


@dataclass
class Message:
    path: Path
    duration_s: float
    voiced_s: float
    ended_by: str  # key | silence | max_length | no_input | hangup


def recordings_dir(ctx: FlowContext) -> Path:
    d = Path(ctx.services.recordings_dir or "recordings")
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_wav(path: Path, pcm: bytes, rate: int, channels: int = 1) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    tmp.replace(path)


async def record_message(ctx: FlowContext, opts: RecordOptions) -> Message | None:
    """Beep, then record the caller until the stop key, silence after speech, no speech, or max_s.

    Returns None when the channel cannot record (no caller audio). On hang-up the partial message is
    saved and reported, then the cancellation goes on.
    """
    ch = ctx.channel
    if not ch.hears:
        return None
    rate = ctx.prompts.rate
    if opts.beep:
        await ctx.play("beep", barge_in=False)
    ch.flush_digits()
    path = recordings_dir(ctx) / f"{ch.call_id}-{opts.purpose}.wav"
    pcm: list[bytes] = []
    got = voiced = silent = 0.0
    ended_by = "max_length"
    try:
        async for chunk in ch.audio_chunks():
            pcm.append(chunk)
            seconds = len(chunk) / (2 * rate)
            got += seconds
            samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32)
            loud = bool(len(samples)) and float(np.sqrt(np.mean(samples * samples))) > SPEECH_RMS
            if loud:
                voiced += seconds
                silent = 0.0
            else:
                silent += seconds
            key = None
            while ch.has_digits():
                d = await ch.next_digit(0.01)
                if d is None:
                    break
                ctx.emit(DigitsReceived, node=ctx.node, digits=d[0], method=d[1])
                if d[0] == opts.stop_key:
                    key = d[0]
            if key:
                ended_by = "key"
                break
            if got >= opts.max_s:
                break
            if voiced > 0.3 and silent >= opts.end_silence_s:
                ended_by = "silence"
                break
            if voiced <= 0.3 and got >= opts.no_input_s:
                ended_by = "no_input"
                break
    except asyncio.CancelledError:
        if got > 0:
            msg = _save(path, pcm, rate, voiced, "hangup")
            report_message(ctx, opts.purpose, msg)
        raise
    return _save(path, pcm, rate, voiced, ended_by)


def _save(path: Path, pcm: list[bytes], rate: int, voiced: float, ended_by: str) -> Message:
    data = b"".join(pcm)
    write_wav(path, data, rate)
    msg = Message(path, round(len(data) / (2 * rate), 2), round(voiced, 2), ended_by)
    log.info("message_recorded", file=path.name, duration_s=msg.duration_s, voiced_s=msg.voiced_s, ended_by=ended_by)
    return msg


def report_message(ctx: FlowContext, purpose: str, msg: Message) -> None:
    """Emit MessageRecorded now (the event is in the spool before the caller hears the goodbye); when the
    speech service is there, the transcript follows as MessageTranscribed from a task that outlives the call.

    A marker file under ``<recordings>/.transcribe/<worker>/`` names the message until its transcript is
    spooled, so a worker killed meanwhile transcribes it after its restart (:func:`resume_transcripts`)."""
    url = ctx.services.speech_url
    node, emit, rate = ctx.node, ctx.emit, ctx.prompts.rate
    # a message to the judge or an urge is about the case checked in this call (ivr/case_dialog.py)
    case = ctx.verified_case if purpose in CASE_PURPOSES else None
    case_number = str(getattr(case, "case_number", "") or "")
    pending = bool(url) and msg.voiced_s > 0.3
    message_id = uuid.uuid4().hex
    emit(MessageRecorded, event_id=message_id, node=node, purpose=purpose, recording=msg.path.name,
         duration_s=msg.duration_s, text="", case_number=case_number, transcript_pending=pending)
    if not pending:
        return
    job = TranscriptJob(call_id=str(ctx.channel.call_id), message_event_id=message_id, node=node, purpose=purpose,
                        recording=msg.path.name, rate=rate)
    marker = job.save(_pending_dir(msg.path.parent, ctx.services.worker_name or "worker"))

    def done(text: str) -> None:
        emit(MessageTranscribed, message_event_id=message_id, node=node, purpose=purpose,
             recording=msg.path.name, text=text)

    _start(transcribe_job(url, msg.path, rate, done, marker))


@dataclass(frozen=True)
class TranscriptJob:
    """A message whose transcript is not spooled yet (what a restarted worker needs to send it)."""

    call_id: str
    message_event_id: str
    node: str
    purpose: str
    recording: str
    rate: int

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.message_event_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)), encoding="utf-8")
        tmp.replace(path)
        return path


def _pending_dir(recordings: Path, worker: str) -> Path:
    return recordings / ".transcribe" / worker


def _start(coro) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def transcribe_job(url: SpeechTarget, wav: Path, rate: int, done, marker: Path) -> None:
    """Transcribe ``wav``, hand the text to ``done`` (which spools it), then drop the marker."""
    text = ""
    try:
        with wave.open(str(wav), "rb") as w:
            pcm = w.readframes(w.getnframes())
        text = await transcribe_pcm(url, pcm, rate)
    except (SpeechUnavailable, OSError, wave.Error) as e:
        log.warning("message_not_transcribed", file=wav.name, error=str(e))
    except Exception:
        log.exception("message_transcription_failed", file=wav.name)
    done(text)
    marker.unlink(missing_ok=True)


def resume_transcripts(recordings: Path, worker: str, url: SpeechTarget | None, emit) -> int:
    """At a worker's start: transcribe the messages an earlier run of this worker reported but did not finish
    (``emit(event_cls, **fields)`` as the worker's). Returns how many were resumed."""
    found = sorted(_pending_dir(recordings, worker).glob("*.json"))
    for marker in found:
        try:
            job = TranscriptJob(**json.loads(marker.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            log.warning("transcript_marker_unreadable", file=marker.name, error=str(e))
            marker.unlink(missing_ok=True)
            continue

        def done(text: str, job: TranscriptJob = job) -> None:
            emit(MessageTranscribed, call_id=job.call_id, message_event_id=job.message_event_id, node=job.node,
                 purpose=job.purpose, recording=job.recording, text=text)

        wav = recordings / job.recording
        if not url:  # no speech service any more: an empty transcript closes the message's "转写中"
            done("")
            marker.unlink(missing_ok=True)
            continue
        log.info("transcript_resumed", file=job.recording)
        _start(transcribe_job(url, wav, job.rate, done, marker))
    return len(found)


async def record_and_report(ctx: FlowContext, opts: RecordOptions, confirm: bool = False,
                            confirm_prompt: str | None = "record_confirm",
                            key_timeout_s: float = 5.0) -> Message | None:
    """record_message, optionally "确认请按1，重新录制请按2" (twice at most), then MessageRecorded."""
    for attempt in range(3):
        msg = await record_message(ctx, opts)
        if msg is None:
            return None
        if not confirm or not confirm_prompt or attempt == 2 or msg.ended_by == "no_input":
            break
        await ctx.play(confirm_prompt, barge_in=True)
        if await read_key(ctx, key_timeout_s) != "2":
            break
    report_message(ctx, opts.purpose, msg)
    return msg


class StereoRecorder:
    """A bridged call to a stereo WAV: caller left, operator right, from the frames the two media
    ports already copy out (both legs run on the same conference clock, so they stay aligned)."""

    def __init__(self, path: Path, rate: int):
        self.path = path
        self.rate = rate
        self._left: list[bytes] = []
        self._right: list[bytes] = []
        self._nl = self._nr = 0
        self._w: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115 - open for the call's life
        self._w.setnchannels(2)
        self._w.setsampwidth(2)
        self._w.setframerate(rate)
        self.frames = 0

    def caller(self, data: bytes) -> None:
        self._left.append(data)
        self._nl += len(data)
        self._flush()

    def operator(self, data: bytes) -> None:
        self._right.append(data)
        self._nr += len(data)
        self._flush()

    def _flush(self, final: bool = False) -> None:
        if self._w is None:
            return
        n = max(self._nl, self._nr) if final else min(self._nl, self._nr)
        if n < 2 and not final:
            return
        left = b"".join(self._left)
        right = b"".join(self._right)
        n -= n % 2
        lpad = left[:n].ljust(n, b"\0")
        rpad = right[:n].ljust(n, b"\0")
        stereo = np.empty(n // 2 * 2, dtype="<i2")
        stereo[0::2] = np.frombuffer(lpad, dtype="<i2")
        stereo[1::2] = np.frombuffer(rpad, dtype="<i2")
        self._w.writeframes(stereo.tobytes())
        self.frames += n // 2
        self._left, self._right = [left[n:]], [right[n:]]
        self._nl, self._nr = len(left) - min(n, len(left)), len(right) - min(n, len(right))

    def close(self) -> float:
        """Finish the file; its duration in seconds."""
        if self._w is not None:
            with contextlib.suppress(Exception):
                self._flush(final=True)
            self._w.close()
            self._w = None
        return round(self.frames / self.rate, 2)
