"""The calibrated decision of the semantic matcher: answer, confirm, clarify or hand off, with the figures.

``answer`` when p (the best entry is right) ≥ the rule's ``answer`` threshold; ``confirm`` one entry when
p ≥ ``confirm`` and no other candidate's re-ranker score is within ``clarify_window``; ``clarify`` with the 2–3
close entries when p(top3) ≥ ``offer``; else ``handoff``. At a menu the menu's rule decides when an option ranks
first or close to the first entry, else the question rule (a question asked outright at a menu is answered as
in 诉讼咨询).
"""

from __future__ import annotations

from knowledge_base.calibration import FEATURES, Calibration, Rule
from knowledge_base.match_types import OPTION_PREFIX, Candidate, Decision, MatchResult
from knowledge_base.rerank_features import Analysis

_AT = {name: i for i, name in enumerate(FEATURES)}


def _result(text: str, ids: tuple[str, ...], shown: int, decision: Decision, a: Analysis, reason: str,
            p: float | None, offered: list[str] | None = None) -> MatchResult:
    cands = [Candidate(faq_id=ids[i], score=round(v, 4)) for i, v in zip(a.order, a.rank_score, strict=True)][:shown]
    best = ids[a.order[0]] if a.order else None
    option = faq_id = None
    if decision in ("answer", "confirm") and best is not None:
        if best.startswith(OPTION_PREFIX):
            option = best[len(OPTION_PREFIX):] if decision == "answer" else None
        else:
            faq_id = best
    score = round(a.rank_score[0], 4) if a.rank_score else 0.0
    margin = round(a.rank_score[0] - a.rank_score[1], 4) if len(a.rank_score) > 1 else score
    return MatchResult(query=text, decision=decision, faq_id=faq_id, score=score, margin=margin, reason=reason,
                       candidates=cands, offered=offered or [], option=option,
                       probability=None if p is None else round(p, 4))


def menu_or_question_rule(cal: Calibration, a: Analysis, first_option: int) -> Rule:
    """At a menu: the menu's rule when an option ranks first or close to the first entry (a caller naming a
    service, 案件进度查询, must get the option, not the FAQ on how to query); else the question rule."""
    if not a.order:
        return cal.menu
    best_option = max((v for i, v in zip(a.order, a.rank_score, strict=True) if i >= first_option), default=None)
    if a.order[0] >= first_option or (best_option is not None
                                      and best_option >= a.rank_score[0] - cal.option_window):
        return cal.menu
    return cal.faq


def decide(text: str, a: Analysis, ids: tuple[str, ...], n_options: int, cal: Calibration,
           min_query_chars: int, shown: int) -> MatchResult:
    rule = menu_or_question_rule(cal, a, len(ids) - n_options) if n_options else cal.faq
    if a.early is not None or a.x is None:
        detail = {"empty": "nothing left after removing fillers",
                  "too_short": f"fewer than {min_query_chars} characters after removing fillers",
                  "no_entries": "the knowledge base is empty"}[a.early or "empty"]
        return _result(text, ids, shown, "handoff", a, f"{a.early}: {detail}", None)
    x = a.x
    p = rule.top.probability(x)
    p3 = rule.top3.probability(x)
    best = ids[a.order[0]]
    figures = (f"cos {x[_AT['sem']]:.2f}, answer cos {x[_AT['answer']]:.2f}, lex {x[_AT['lex']]:.2f}, "
               f"{int(x[_AT['agree']])}/3 rankers agree")
    if p >= rule.answer:
        return _result(text, ids, shown, "answer", a, f"confident: p={p:.2f} >= {rule.answer:.2f} ({figures})", p)
    close = [i for i, v in zip(a.order, a.rank_score, strict=True) if v >= a.rank_score[0] - rule.clarify_window][:3]
    if p >= rule.confirm and len(close) == 1:
        return _result(text, ids, shown, "confirm", a, f"unsure: p={p:.2f} < {rule.answer:.2f}, >= "
                                                       f"{rule.confirm:.2f}, no close runner-up ({figures})", p, [best])
    if p3 >= rule.offer:
        offered = [ids[i] for i in (close if len(close) >= 2 else a.order[:2])]
        return _result(text, ids, shown, "clarify", a, f"close: p={p:.2f} < {rule.answer:.2f}, p(top3)={p3:.2f} >= "
                                                       f"{rule.offer:.2f}, {len(offered)} entries within "
                                                       f"{rule.clarify_window:.2f} ({figures})", p, offered)
    return _result(text, ids, shown, "handoff", a, f"low_probability: p={p:.2f}, p(top3)={p3:.2f} < "
                                                   f"{rule.offer:.2f} ({figures})", p)
