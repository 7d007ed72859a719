"""The digit reader's decoding (asr/digit_reader.py) on made-up frame probabilities, and its weights file.
The reader on real speech is measured in tests/test_speech_turns.py."""

from __future__ import annotations

import numpy as np
import pytest

from asr.digit_reader import (
    BLANK,
    DEFAULT_PATH,
    MAX_SPAN_ENTROPY,
    SLACK,
    DigitReader,
    _best_of_length,
    _greedy,
    span_entropy,
)
from asr.errors import ModelError


def frames_of(symbols: list[int], sure: float = 0.9) -> np.ndarray:
    """Log-probabilities where frame t is ``symbols[t]`` with probability ``sure``, the rest spread evenly."""
    lp = np.full((len(symbols), 11), np.log((1 - sure) / 10))
    for t, s in enumerate(symbols):
        lp[t, s] = np.log(sure)
    return lp


def d(c: str) -> int:
    return int(c) + 1


def test_a_run_of_one_digit_stays_apart_where_a_blank_separates_it():
    lp = frames_of([BLANK, d("7"), d("7"), BLANK, d("7"), BLANK, d("7"), d("7"), BLANK, d("0")])
    assert _greedy(lp) == "7770"


def test_a_known_length_finds_the_digit_the_greedy_path_merged():
    # the second 8 has no blank before it on the greedy path (8 8 read as one), but a frame where blank is
    # nearly as likely: asked for 3 digits, the reader splits the run there instead of dropping a digit
    symbols = [BLANK, d("1"), BLANK, d("8"), d("8"), d("8"), BLANK]
    lp = frames_of(symbols)
    lp[4, BLANK], lp[4, d("8")] = np.log(0.45), np.log(0.5)
    assert _greedy(lp) == "18"
    digits, score = _best_of_length(lp, 3)
    assert digits == "188" and score < 0
    assert _best_of_length(lp, 20) == ("", -np.inf)  # more digits than frames can hold


def test_a_reading_far_from_the_expected_length_is_not_stretched_to_it(monkeypatch):
    reader = DigitReader()
    assert reader.w["out_w"].shape[1] == 11  # blank and 0-9
    three = frames_of([BLANK, d("5"), BLANK, d("6"), BLANK, d("7"), BLANK] * 3, sure=0.999)  # 9 digits heard
    monkeypatch.setattr(reader, "log_probs", lambda frames: frames)  # the made-up probabilities as the network's
    assert len(reader.read(three, 11).digits) == 11  # 2 short: fitted to 11 (SLACK)
    assert SLACK == 2
    assert reader.read(three, 12).digits == "567567567"  # 3 short: left as heard, the dialogue asks again
    assert reader.read(three, None).digits == "567567567"
    assert reader.read(frames_of([BLANK] * 20), 11).digits == ""


def test_digits_among_unsure_frames_read_as_nothing(monkeypatch):
    """Speech that is not a number: a few confident digits between frames the network is unsure of."""
    reader = DigitReader()
    monkeypatch.setattr(reader, "log_probs", lambda frames: frames)
    sure = frames_of([BLANK, d("3"), BLANK, BLANK, d("9"), BLANK], sure=0.999)
    unsure = frames_of([BLANK, d("3"), d("4"), BLANK, d("9"), BLANK], sure=0.6)
    lp = np.concatenate([sure[:2], unsure[2:4], sure[4:]])
    assert span_entropy(sure) < MAX_SPAN_ENTROPY < span_entropy(lp)
    assert reader.read(sure, 2).digits == "39"
    got = reader.read(lp, 2)
    assert got.digits == "" and got.free and got.entropy > MAX_SPAN_ENTROPY


def test_a_missing_or_foreign_weights_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(ModelError, match="nothing.npz"):
        DigitReader(tmp_path / "nothing.npz")
    bad = tmp_path / "old.npz"
    with np.load(DEFAULT_PATH) as good:
        np.savez(bad, **{**dict(good), "version": 99})
    with pytest.raises(ModelError, match="old.npz.*version 99"):
        DigitReader(bad)
    torn = tmp_path / "torn.npz"
    torn.write_bytes(DEFAULT_PATH.read_bytes()[:1000])
    with pytest.raises(ModelError, match="torn.npz"):
        DigitReader(torn)
