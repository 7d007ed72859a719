"""Traditional → simplified (OpenCC), full → half width, fillers, Chinese numerals → digits.

Numerals are converted conservatively: a court's vocabulary is full of numerals that are not
numbers (一审, 二审, 统一, 一下), so a single numeral character becomes a digit only before a
measure word (十五天, 三个月 are runs and always convert; 一审 stays).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import cn2an
import opencc

DIGIT = {"零": "0", "〇": "0", "○": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
         "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
UNITS = set("十百千万亿")
NUMERAL = set(DIGIT) | UNITS
MEASURES = ("天", "日", "号", "年", "月", "个", "元", "块", "万", "位", "岁", "周", "小时", "分钟", "次", "份",
            "页", "楼", "层", "点", "倍", "项", "条", "名", "人")
FILLERS = ("喂", "嗯", "呃", "啊", "哦", "噢", "唉", "哎", "诶", "那个", "这个", "就是说", "就是", "然后", "那么",
           "的话", "我想问一下", "请问一下", "请问", "你好", "您好", "麻烦", "一下")
_FILLER_RE = re.compile("|".join(sorted(map(re.escape, FILLERS), key=len, reverse=True)))
_PUNCT_RE = re.compile(r"[\s\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def to_halfwidth(text: str) -> str:
    """Full-width ASCII letters, digits and punctuation (and the ideographic space) to half width."""
    return unicodedata.normalize("NFKC", text)


def strip_fillers(text: str) -> str:
    """Remove spoken fillers and politeness that carry no meaning for matching."""
    return _FILLER_RE.sub("", text)


def _convert_run(run: str) -> str:
    if not set(run) & UNITS:
        return "".join(DIGIT[c] for c in run)  # 二零二三 -> 2023, 零三零五 -> 0305
    try:
        return str(cn2an.cn2an(run.replace("幺", "一").replace("〇", "零").replace("○", "零"), "smart"))
    except (ValueError, KeyError):
        return run


def numerals_to_digits(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] not in NUMERAL:
            out.append(text[i])
            i += 1
            continue
        j = i
        while j < n and text[j] in NUMERAL:
            j += 1
        run = text[i:j]
        rest = text[j:]
        if len(run) >= 2 or run in UNITS - {"万", "亿"} or any(rest.startswith(m) for m in MEASURES):
            out.append(_convert_run(run))
        else:
            out.append(run)
        i = j
    return "".join(out)


def normalize_for_matching(text: str) -> str:
    """One canonical form for comparing what callers say with FAQ text."""
    t = to_halfwidth(to_simplified(text)).lower()
    t = strip_fillers(t)
    t = numerals_to_digits(t)
    return _PUNCT_RE.sub("", t)
