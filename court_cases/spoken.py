"""What the IVR says about a case, written for the voice.

The voice reads ASCII digits one by one (``tts.voice.tts_text``), so every quantity here is written in
Chinese numerals: 二零二七年三月五日，星期五，上午九点三十分; 十二万元; 第三法庭. Digit strings that are read
one by one anyway (case numbers, lookup numbers) are written 零一二… so nothing depends on the voice's rules.
The sentences hold no party names and no secrets.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from court_cases.case import DEFAULT_TZ, CaseInfo

DIGITS = "零一二三四五六七八九"
_UNITS = ("", "十", "百", "千")
_BIG = ("", "万", "亿")
WEEKDAYS = "一二三四五六日"

SAY_UNAVAILABLE = "抱歉，案件查询系统暂时无法使用，请稍后再拨，或转人工服务。"
SAY_NOT_FOUND = "没有查到这个案号对应的案件，请核对后重新输入。"
SAY_INVALID = "案号格式不正确。请依次输入年份、法院代码、案件类型代码和案件序号，中间用星号隔开，以井号结束。"
SAY_LOCKED = "验证未通过的次数过多，今天已不能再通过电话查询这个案件，请明天再试，或转人工服务。"
SAY_VERIFY_FIRST = "请先验证身份。"


def read_digits(text: str) -> str:
    """Each ASCII digit as its Chinese character (零 for 0): ``0305`` → 零三零五."""
    return re.sub(r"\d", lambda m: DIGITS[int(m.group())], text)


def _under_10000(n: int) -> str:
    out, zero = [], False
    for i in range(3, -1, -1):
        d = n // 10**i % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[d] + _UNITS[i])
    return "".join(out)


def number(n: int) -> str:
    """An integer as spoken: 0 → 零, 10 → 十, 15 → 十五, 105 → 一百零五, 120000 → 十二万, 10500 → 一万零五百."""
    if n < 0:
        return "负" + number(-n)
    if n == 0:
        return "零"
    groups, rest = [], n
    while rest:
        groups.append(rest % 10000)
        rest //= 10000
    if len(groups) > len(_BIG):
        return read_digits(str(n))
    out, gap = "", False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            gap = bool(out)
            continue
        if out and (gap or g < 1000):
            out += "零"
        gap = False
        out += _under_10000(g) + _BIG[i]
    return out[1:] if out.startswith("一十") else out


def amount(text: str) -> str:
    """A decimal number as spoken: ``12.50`` → 十二点五."""
    whole, _, frac = text.partition(".")
    spoken = number(int(whole))
    frac = frac.rstrip("0")
    return spoken + ("点" + read_digits(frac) if frac else "")


def spoken_time(at: datetime, tz: str = DEFAULT_TZ) -> str:
    """二零二七年三月五日，星期五，上午九点三十分 (in the court's time zone)."""
    local = at.astimezone(ZoneInfo(tz))
    h, m = local.hour, local.minute
    if h < 6:
        part, hh = "凌晨", h
    elif h < 12:
        part, hh = "上午", h
    elif h < 13:
        part, hh = "中午", h
    elif h < 18:
        part, hh = "下午", h - 12
    else:
        part, hh = "晚上", h - 12
    hour = "两" if hh == 2 else number(hh)
    minute = "" if m == 0 else ("零" + number(m) if m < 10 else number(m)) + "分"
    return (f"{read_digits(str(local.year))}年{number(local.month)}月{number(local.day)}日，"
            f"星期{WEEKDAYS[local.weekday()]}，{part}{hour}点{minute}")


_DATE_RE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})[日号]")
_DATE_ISO_RE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_CLOCK_RE = re.compile(r"(?<!\d)(\d{1,2})[:：](\d{2})(?!\d)")
_HOUR_RE = re.compile(r"(?<!\d)(\d{1,2})点(?:(\d{1,2})分)?")
_MONEY_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(\s*)(万元|元|万|亿元|亿)")
_ORDINAL_RE = re.compile(r"第(\d{1,4})(?!\d)")
_COUNT_RE = re.compile(r"(?<!\d)(\d{1,4})(个工作日|个月|天|日内|次|笔|件|位|名|人|年)")


def speak_numbers(text: str) -> str:
    """Free text from the case system made speakable: dates, times, amounts, ordinals and counts in Chinese
    numerals (2027年3月5日 → 二零二七年三月五日, 12000元 → 一万二千元, 第3法庭 → 第三法庭); other digit runs
    (room, phone numbers) stay digits and are read one by one."""
    t = _DATE_RE.sub(lambda m: f"{read_digits(m[1])}年{number(int(m[2]))}月{number(int(m[3]))}日", text)
    t = _DATE_ISO_RE.sub(lambda m: f"{read_digits(m[1])}年{number(int(m[2]))}月{number(int(m[3]))}日", t)
    t = _CLOCK_RE.sub(lambda m: number(int(m[1])) + "点" + ("" if m[2] == "00" else number(int(m[2])) + "分"), t)
    t = _HOUR_RE.sub(lambda m: number(int(m[1])) + "点" + (number(int(m[2])) + "分" if m[2] else ""), t)
    t = _MONEY_RE.sub(lambda m: amount(m[1]) + m[3], t)
    t = _ORDINAL_RE.sub(lambda m: "第" + number(int(m[1])), t)
    return _COUNT_RE.sub(lambda m: ("两" if m[1] == "2" and m[2] != "年" else number(int(m[1]))) + m[2], t)


def spoken_case_number(case_number: str) -> str:
    """（2023）粤0305民初1234号 → 二零二三年粤零三零五民初一二三四号 (how a clerk reads it on the phone)."""
    m = re.match(r"^[（(](\d{4})[）)](.*)$", case_number)
    if not m:
        return read_digits(case_number)
    return f"{read_digits(m[1])}年{read_digits(m[2])}"


def readback(case_number: str | None, lookup: str | None = None) -> str:
    """The confirmation read back after keypad entry."""
    if lookup:
        return f"您输入的查询号是：{read_digits(lookup)}。"
    return f"您输入的案号是：{spoken_case_number(case_number or '')}。"


def tries_left_sentence(tries_left: int) -> str:
    return f"验证未通过，您还可以再试{'两' if tries_left == 2 else number(tries_left)}次。"


def _clause(text: str) -> str:
    text = speak_numbers(text.strip()).rstrip("。.；;，,")
    return text + "。"


def status_sentence(case: CaseInfo, *, now: datetime | None = None, tz: str = DEFAULT_TZ) -> str:
    """The status of ``case`` as the voice says it: stage, the next hearing (when still ahead), the judge and
    department, the enforcement and refund status where the case system has them."""
    return "".join(status_parts(case, now=now, tz=tz))


def status_parts(case: CaseInfo, *, now: datetime | None = None, tz: str = DEFAULT_TZ) -> list[str]:
    """:func:`status_sentence` as its sentences, each ending in 。: a voice can speak the first while it renders
    the next (the first is short: cause and stage)."""
    parts = [f"您查询的案件，案由是{case.cause}，目前{case.stage.spoken}。"]
    h = case.next_hearing
    if h is not None and (now is None or h.at >= now):
        where = f"，地点在{speak_numbers(h.place)}" if h.place else ""
        parts.append(f"下次开庭时间是{spoken_time(h.at, tz)}{where}。")
    people = []
    if case.judge:
        people.append(f"承办法官是{case.judge}")
    if case.clerk:
        people.append(f"书记员是{case.clerk}")
    if case.department:
        people.append(f"承办部门是{case.department}")
    if people:
        parts.append("，".join(people) + "。")
    if case.enforcement_status:
        parts.append("执行情况：" + _clause(case.enforcement_status))
    if case.refund_status:
        parts.append("退费情况：" + _clause(case.refund_status))
    return parts
