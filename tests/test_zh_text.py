"""Chinese normalisation and the case-number parser."""

from __future__ import annotations

import pytest

from zh_text import normalize_for_matching, numerals_to_digits, parse_case_number, to_simplified


@pytest.mark.parametrize("text,canonical,keypad", [
    ("（2023）粤0305民初1234号", "（2023）粤0305民初1234号", "2023*440305*1*1234"),
    ("(2023)粤03民终88号", "（2023）粤03民终88号", "2023*4403*2*88"),
    ("二零二三年粤零三零五民初一二三四号", "（2023）粤0305民初1234号", "2023*440305*1*1234"),
    ("我的案号是二〇二一京零一零五执五六七号", "（2021）京0105执567号", "2021*110105*4*567"),
    ("（２０２３）粵０３０５民初１２３４號", "（2023）粤0305民初1234号", "2023*440305*1*1234"),
    ("2023*440305*1*1234", "（2023）粤0305民初1234号", "2023*440305*1*1234"),
    ("2023*440305*1*1234#", "（2023）粤0305民初1234号", "2023*440305*1*1234"),
])
def test_case_numbers_from_text_speech_and_keypad(text, canonical, keypad):
    c = parse_case_number(text)
    assert c is not None and c.canonical == canonical and c.keypad == keypad
    assert parse_case_number(c.keypad) == c


@pytest.mark.parametrize("text", ["我想查一下案件进度", "2023*990305*1*1234", "2023*440305*99*1", "粤0305民初号", ""])
def test_not_a_case_number(text):
    assert parse_case_number(text) is None


def test_numerals_only_where_they_are_numbers():
    assert numerals_to_digits("上诉期限是十五天") == "上诉期限是15天"
    assert numerals_to_digits("诉讼费一千二百元，三个月内") == "诉讼费1200元，3个月内"
    assert numerals_to_digits("二零二三年") == "2023年"
    for keep in ("一审判决", "二审", "统一", "一些材料", "第一审"):
        assert numerals_to_digits(keep) == keep


def test_matching_form():
    assert to_simplified("訴訟費什麼時候退") == "诉讼费什么时候退"
    assert normalize_for_matching("嗯，那个，我想问一下訴訟費什麼時候退？") == "诉讼费什么时候退"
    assert normalize_for_matching("ＡＢＣ　立案") == "abc立案"
