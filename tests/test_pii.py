"""Masking of ID-card numbers, phone numbers and case numbers, and who sees them in clear."""

from __future__ import annotations

import logging

import pytest

from agent_console.pii import SEES_CLEAR, MaskingFilter, mask_fields, mask_for, mask_text


@pytest.mark.parametrize(("text", "masked", "secret"), [
    ("我的电话是13812345678", "我的电话是138****5678", "13812345678"),
    ("手机 +86 138-1234-5678 谢谢", "手机 138****5678 谢谢", "1234"),
    ("身份证44030519900101123X", "身份证4403************3X", "19900101"),
    ("身份证号440305199001011234。", "身份证号4403************34。", "199001011"),
    ("座机020-87654321", "座机020-******21", "87654321"),
    ("（2023）粤0305民初1234号怎么查", "（2023）粤0305民初****号怎么查", "1234号"),
    ("(2024)京01民终88号", "(2024)京01民终**号", "88号"),
    ("按键2023*440305*1*1234#", "按键2023*440305*1*****#", "*1234"),
    ("电话幺三八一二三四五六七八", "电话*********七八", "幺三八"),
    ("账号6222020200112233445", None, "6222020200112233"),
])
def test_masks_personal_data(text, masked, secret):
    out = mask_text(text)
    if masked is not None:
        assert out == masked
    assert secret not in out


@pytest.mark.parametrize("text", ["我想问一下立案需要什么材料", "2023年3月5日开庭", "标的额12000元", "诉讼费50元", ""])
def test_leaves_ordinary_text_alone(text):
    assert mask_text(text) == text


def test_fields_and_roles():
    event = {"type": "offer", "call_id": "13812345678abc", "caller": "13812345678",
             "transcript": [{"line_id": "x:1", "text": "电话13900001111"}], "seq": 12345678901}
    masked = mask_for("operator", event)
    assert masked["caller"] == "138****5678" and masked["transcript"][0]["text"] == "电话139****1111"
    assert masked["call_id"] == event["call_id"] and masked["seq"] == event["seq"]  # ids are not text
    assert mask_for("admin", event) is event
    assert mask_for("supervisor", event)["caller"] == "138****5678"
    assert mask_for("nobody-knows", event)["caller"] == "138****5678"
    assert SEES_CLEAR["admin"] and not SEES_CLEAR["operator"]
    assert mask_fields(["13812345678"]) == ["13812345678"]  # only under text keys


def test_log_filter(caplog):
    log = logging.getLogger("test.pii")
    log.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.pii"):
        log.info("caller %s said %s", "13812345678", "（2023）粤0305民初1234号")
    assert "13812345678" not in caplog.text and "1234号" not in caplog.text
    assert "138****5678" in caplog.text
