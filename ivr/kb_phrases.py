"""The words of the knowledge-base dialogue, and how a caller's spoken reply is read.

The sentences built here are rendered ahead by the speech service (``hotline/speech_main.prerender_answers``:
every enabled entry's confirm sentence and its list fragments "一，<title>；" … "三，<title>；"), so the worker
finds them in the voice's cache: the list is one rendered lead prompt, then these fragments joined.
"""

from __future__ import annotations

import re

FOLLOW_UP_PROMPT = "kb_follow_up"  # 解决了请按1，转人工请按0。
CLARIFY_LEAD = "kb_clarify_lead"  # 您是想问：
MENU_CLARIFY_LEAD = "menu_clarify_lead"  # 您是要办理：
CLARIFY_TAIL = "kb_clarify_tail"  # 请说序号或按键。
DIALOG_PROMPTS = (FOLLOW_UP_PROMPT, CLARIFY_LEAD, MENU_CLARIFY_LEAD, CLARIFY_TAIL)

ORDINALS = ("一", "二", "三")
CONFIRM = "您是想问：{question}吗？是请按1，不是请按2。"
CONFIRM_OPTION = "您是要办理：{title}吗？是请按1，不是请按2。"
MAX_TITLE = 16


def confirm_sentence(question: str) -> str:
    return CONFIRM.format(question=question.strip().rstrip("？?。."))


def option_confirm_sentence(title: str) -> str:
    return CONFIRM_OPTION.format(title=title.strip())


def list_fragment(position: int, title: str) -> str:
    """The words for item ``position`` (1-3) of a spoken list: "二，诉讼费退费；"."""
    return f"{ORDINALS[position - 1]}，{title.strip().rstrip('？?。.；;')}；"


_PUNCT = re.compile(r"[\s，。！？、；：,.!?;:\"'“”‘’（）()…~～-]+")
_NUMBER = {"一": 1, "1": 1, "壹": 1, "幺": 1, "二": 2, "2": 2, "两": 2, "贰": 2, "俩": 2, "三": 3, "3": 3, "叁": 3,
           "四": 4, "4": 4, "五": 5, "5": 5, "六": 6, "6": 6, "七": 7, "7": 7, "八": 8, "8": 8, "九": 9, "9": 9,
           "零": 0, "0": 0}
# "第二个", "二", "第2项", "选二", "按2", "二号", "是第二个吧"; whisper may write 個 for 个
_ORDINAL_RE = re.compile(r"^(?:我)?(?:要|选|选择|按|是)?(?:第)?([一二两三四五六七八九零壹贰叁幺俩0-9])"
                         r"(?:个|個|项|條|条|号)?(?:吧|呢|啊)?$")
_ORDINAL_IN_RE = re.compile(r"第([一二两三四五六七八九壹贰叁0-9])(?:个|個|项|條|条)")
SHORT_REPLY = 8  # characters: a longer reply naming "第二个" is likely about something else
_NONE_WORDS = ("都不是", "都不对", "都没有", "都不", "哪个都不", "一个都不", "没有我要", "不是这些", "转人工", "人工",
               "找人", "工作人员")
_FILLERS = re.compile(r"^(?:嗯|呃|啊|哦|那个|就是|我想问的是|我问的是|我要问)+|(?:那个|那一个|这个|的|吧|呢|啊)+$")
_YES = ("是的", "是", "对的", "对", "没错", "嗯", "好的", "好", "正确", "是这个", "对啊", "是啊", "要")
_NO = ("不是", "不对", "不要", "错了", "不", "没有", "否")


def normalize(text: str) -> str:
    return _PUNCT.sub("", text or "")


def spoken_number(text: str) -> int | None:
    """A digit the caller said as a whole reply: "第二个" / "二" / "第2个" / "按2" -> 2; None otherwise."""
    t = _FILLERS.sub("", normalize(text))
    m = _ORDINAL_RE.match(t)
    if m is None and len(t) <= SHORT_REPLY:  # "我先第二个", "第二个版": the recognizer garbles the words around it
        m = _ORDINAL_IN_RE.search(t)
    return _NUMBER[m.group(1)] if m else None


def says_none(text: str) -> bool:
    """"都不是" / "都不对" / "转人工": none of what was offered."""
    t = normalize(text)
    return any(w in t for w in _NONE_WORDS)


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


def pick_by_title(text: str, titles: list[str]) -> int | None:
    """The 1-based position of the one title the reply names ("退费那个" -> "诉讼费退费"), by shared character
    pairs (then characters); None when no title or several titles share as much."""
    t = _FILLERS.sub("", normalize(text))
    if len(t) < 2:
        return None
    for measure in (_bigrams, set):
        words = measure(t)
        scores = [len(words & measure(normalize(title))) for title in titles]
        best = max(scores, default=0)
        if best > 0:
            return scores.index(best) + 1 if scores.count(best) == 1 else None
    return None


def pick(text: str, titles: list[str]) -> int | None:
    """Which of the offered items the reply means: 1..len(titles), 0 for none (都不是 / 人工 / "零"), None when
    unclear."""
    if says_none(text):
        return 0
    n = spoken_number(text)
    if n is not None:
        return n if n <= len(titles) else None
    return pick_by_title(text, titles)


def yes_no(text: str) -> bool | None:
    """A spoken answer to a yes/no question: True (是/对/是的), False (不是/不对), None when neither."""
    t = _FILLERS.sub("", normalize(text))
    if not t:
        return None
    n = spoken_number(t)
    if n in (1, 2):  # "一" / "二" as the keys would be
        return n == 1
    if any(t.startswith(w) for w in _NO) or "不是" in t or "不对" in t:
        return False
    if any(t.startswith(w) for w in _YES):
        return True
    return None
