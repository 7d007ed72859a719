"""The decision of the lexical-only mode (``kb.semantic = false``): score thresholds, no model.

``answer`` when the best lexical score ≥ ``answer_threshold``, its lead over the runner-up ≥ ``answer_margin``
and the query holds no unknown word (检察院的电话 shares 的电话是多少 with 法院的联系电话是多少, but 检察/察院 are
nowhere in the knowledge base: the entry may still be meant, so it is confirmed, never answered); ``confirm``
when the score ≥ ``confirm_threshold``; else ``handoff`` as ``out_of_scope``. The reason names the figures.
"""

from __future__ import annotations

from knowledge_base.lexical_ranker import LexicalRanker
from knowledge_base.match_types import Candidate, MatchResult


def decide_lexically(text: str, ranker: LexicalRanker) -> MatchResult:
    s = ranker.settings
    norm, scored, early = ranker.rank(text)
    cands = [Candidate(faq_id=c.faq_id, score=c.score) for c in scored[: s.candidates_shown]]
    if early is not None:
        detail = {"empty": "nothing left after removing fillers",
                  "too_short": f"fewer than {s.min_query_chars} characters after removing fillers",
                  "vague": "no specific words",
                  "out_of_scope": "no words in common with any entry"}[early]
        return MatchResult(query=text, decision="handoff", faq_id=None, score=0.0, margin=0.0,
                           reason=f"{early}: {detail}", candidates=cands)
    if not scored:
        return MatchResult(query=text, decision="handoff", faq_id=None, score=0.0, margin=0.0,
                           reason="out_of_scope: no candidate", candidates=[])
    top = scored[0]
    runner = scored[1].score if len(scored) > 1 else 0.0
    margin = round(top.score - runner, 4)
    if top.score < s.confirm_threshold:
        return MatchResult(query=text, decision="handoff", faq_id=None, score=top.score, margin=margin,
                           reason=f"out_of_scope: best score {top.score:.2f} < {s.confirm_threshold:.2f}",
                           candidates=cands)
    unknown = ranker.unknown_words(norm) if top.score >= s.answer_threshold else []
    if top.score >= s.answer_threshold and margin >= s.answer_margin and not unknown:
        return MatchResult(query=text, decision="answer", faq_id=top.faq_id, score=top.score, margin=margin,
                           reason=f"confident: score {top.score:.2f} >= {s.answer_threshold:.2f}, "
                                  f"margin {margin:.2f} >= {s.answer_margin:.2f}",
                           candidates=cands)
    if top.score < s.answer_threshold:
        reason = f"low_score: score {top.score:.2f} < {s.answer_threshold:.2f}"
    elif unknown:
        reason = f"unknown_words: {'、'.join(unknown)[:40]} not in the knowledge base"
    else:
        reason = f"low_margin: margin {margin:.2f} < {s.answer_margin:.2f} over {scored[1].faq_id}"
    return MatchResult(query=text, decision="confirm", faq_id=top.faq_id, score=top.score, margin=margin,
                       reason=reason, candidates=cands, offered=[top.faq_id])
