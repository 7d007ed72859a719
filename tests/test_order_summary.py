"""The call summary (issue 16, part 3): extractive — the caller's requests, the key facts (case numbers in any
form, dates, sums) and what the IVR answered; greetings and fillers left out."""

from __future__ import annotations

from work_orders.summary import summarize


def test_the_requests_and_the_facts_of_a_call():
    s = summarize(["喂，你好", "我那个（2026）粤0305民初1234号的案子下周三开庭，我要请假怎么办？", "嗯嗯",
                   "还有诉讼费5000元什么时候退", "好的谢谢"],
                  answered=["知识库解答“诉讼费怎么交”"])
    assert s.asks == ["我那个（2026）粤0305民初1234号的案子下周三开庭，我要请假怎么办？", "还有诉讼费5000元什么时候退"]
    assert s.facts == ["案号（2026）粤0305民初1234号", "时间下周三", "金额5000元"]
    assert s.text().splitlines() == [
        "诉求：我那个（2026）粤0305民初1234号的案子下周三开庭，我要请假怎么办？；还有诉讼费5000元什么时候退",
        "关键信息：案号（2026）粤0305民初1234号；时间下周三；金额5000元", "系统已答复：知识库解答“诉讼费怎么交”"]


def test_at_most_two_requests_in_the_order_said_and_spoken_case_numbers():
    said = ["我的案子是二零二五年粤零三零五执一八八八号", "今天天气不错", "我想问执行款什么时候到账",
            "法官一直不接电话，我要投诉", "能不能帮我催一下"]
    s = summarize(said, case_numbers=["（2025）粤0305执1888号"])
    assert s.asks == ["我想问执行款什么时候到账", "法官一直不接电话，我要投诉"]
    assert s.facts[0] == "案号（2025）粤0305执1888号" and len([f for f in s.facts if f.startswith("案号")]) == 1


def test_nothing_but_greetings_says_so():
    assert summarize(["喂", "你好", "嗯"]).text() == "诉求：（来电人未说明）"
    assert summarize(["12月8日上午9点开庭吗"]).facts == ["时间12月8日上午9点"]
