"""The call summary on an order (issue 16, part 3): extractive, so every word in it was said or shown.

Three parts, one line each, for the handler who never heard the call:

- 诉求: the caller's sentences that ask for something (想/要/请/希望/怎么/为什么/能不能…, or name a hotline
  matter: 立案, 开庭, 执行, 投诉 …), greetings and fillers left out, at most two in the order they were said;
- 关键信息: case numbers (the shared parser: any written or spoken form), dates and times, sums of money;
- 系统已答复: what the IVR already answered (the knowledge base's answers, the case status the caller heard).

It is made when the order is filed and stored on it; staff may correct it (``PUT /api/work_orders/{id}/summary``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from zh_text import parse_case_number

#: a sentence that carries a request
_ASKS = re.compile(r"想|要|请|希望|需要|怎么|如何|为什么|为何|能不能|可不可以|可以吗|是否|多久|什么时候|哪里|帮|麻烦|"
                   r"投诉|反映|举报|催|联系|查询|查一下|问一下|咨询|申请|建议|不满|没有人|一直|还没")
#: words of the court's matters: a sentence with them is worth keeping even without a request word
_MATTERS = re.compile(r"立案|起诉|诉讼费|开庭|判决|裁定|执行|强制|保全|鉴定|调解|上诉|退费|退款|法官|书记员|"
                      r"案件|案子|材料|送达|文书|庭审|传票|拖欠|工资|借款|离婚|赔偿")
#: greetings, thanks and fillers (a sentence of only these is dropped)
_FILLER = re.compile(r"^(喂|你好|您好|哎|唉|嗯|啊|哦|呃|那个|就是|好的|好|对|是的|是|谢谢|谢谢你|再见|没有了|没了|"
                     r"行|可以|[，。！？、,.!?\s])+$")
_SPLIT = re.compile(r"(?<=[。！？!?；;])|\n")
_DATE = re.compile(r"(?:\d{4}年)?\d{1,2}月\d{1,2}[日号](?:[上下]午)?(?:\d{1,2}[点时:：](?:\d{1,2}分?)?)?|"
                   r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|(?:今天|明天|后天|昨天|前天|上周|下周|本周)[一二三四五六日天]?(?:[上下]午)?|"
                   r"(?:[上下]午)?\d{1,2}[点时](?:\d{1,2}分|半)?")
_MONEY = re.compile(r"\d+(?:\.\d+)?(?:万|千)?元|\d+(?:\.\d+)?万(?:块|元)?|\d+块钱?")
MAX_ASKS = 2
MAX_LINE = 160


@dataclass(frozen=True)
class Summary:
    asks: list[str]
    facts: list[str]
    answered: list[str]

    def text(self) -> str:
        lines = [f"诉求：{'；'.join(self.asks) or '（来电人未说明）'}"]
        if self.facts:
            lines.append(f"关键信息：{'；'.join(self.facts)}")
        if self.answered:
            lines.append(f"系统已答复：{'；'.join(self.answered)}")
        return "\n".join(line[:MAX_LINE] for line in lines)


def sentences(texts: Iterable[str]) -> list[str]:
    out = []
    for t in texts:
        for s in _SPLIT.split(t or ""):
            s = s.strip(" ，,")
            if s and not _FILLER.match(s):
                out.append(s)
    return out


def _score(s: str) -> int:
    return 2 * bool(_ASKS.search(s)) + bool(_MATTERS.search(s))


def key_facts(texts: Sequence[str], case_numbers: Iterable[str] = ()) -> list[str]:
    """Case numbers, dates and sums of money in the order they appear (each once)."""
    cases = [c for c in case_numbers if c]
    for s in sentences(texts):
        found = parse_case_number(s)
        if found is not None:
            cases.append(found.canonical)
    facts = [f"案号{c}" for c in dict.fromkeys(cases)]
    joined = "\n".join(texts)
    dates = list(dict.fromkeys(m.group(0) for m in _DATE.finditer(joined)))
    money = list(dict.fromkeys(m.group(0) for m in _MONEY.finditer(joined)))
    if dates:
        facts.append("时间" + "、".join(dates[:4]))
    if money:
        facts.append("金额" + "、".join(money[:3]))
    return facts


def summarize(caller_said: Sequence[str], *, case_numbers: Iterable[str] = (),
              answered: Iterable[str] = ()) -> Summary:
    """The summary of what the caller said (their utterances or the written request, in order), the case numbers
    known from elsewhere (the verified case, the form) and what the IVR answered."""
    found = sentences(caller_said)
    ranked = sorted(((_score(s), i) for i, s in enumerate(found) if _score(s) > 0), key=lambda x: (-x[0], x[1]))
    keep = sorted(i for _, i in ranked[:MAX_ASKS])
    asks = [found[i] for i in keep] or found[:1]
    return Summary(asks=asks, facts=key_facts(list(caller_said), case_numbers),
                   answered=list(dict.fromkeys(a for a in answered if a)))
