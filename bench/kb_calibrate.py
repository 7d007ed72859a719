"""Fit the matcher's calibrated decision on the TUNING data only and write knowledge_base/data/calibration.json.

Tuning data: tests/data/kb_eval.jsonl and, when present, tests/data/kb_eval_more.jsonl (both against the default
KB; "also" lists other acceptable ids) and tests/data/nav_tune.jsonl (spoken menu navigation against the main
menu's options). The held-out files (kb_heldout_*, nav_heldout*) are never read here.

1. The weight of the lexical score in the preselection (cosine + w × lexical) is chosen by top-1 on the tuning
   data. Ranking and calibration are done against randomly *thinned* copies of the default KB (each entry keeps its
   question and 0–2 of its variants, ``--thin-seeds`` seeds): the default KB has ~5 variants an entry, a real
   court's FAQ 0–3, and cosines, margins and lexical scores are all lower when an entry has fewer texts, so a
   decision fitted on the full KB is too timid on a sparse one. Every utterance appears once per seed; the CV
   folds keep all copies of an utterance together.
2. The re-ranker (a conditional logit over the preselected candidates' RERANK_FEATURES, bench/kb_rerank_fit.py):
   out-of-fold scores by 5-fold cross-validation (folds by utterance), so the decision below is fitted on
   orderings the re-ranker did not see; at the end it is fitted on all rows.
   Then two logistic regressions (scikit-learn) on the best entry's features (knowledge_base.calibration.FEATURES):
   "the best entry is right" and "the right entry is among the first three"; out-of-fold probabilities by
   5-fold stratified cross-validation.
3. Thresholds from the out-of-fold probabilities: ``answer`` = the lowest p whose answers reach the target
   precision (default 0.99, above the 0.98 goal to leave room for unseen data); then confirm / offer / clarify
   window by a grid that maximises resolution minus half the share of out-of-scope questions offered a choice.
4. Fit both regressions on all tuning rows; write coefficients, thresholds and the CV figures.

    .venv/bin/python bench/kb_calibrate.py [--target 0.985] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # appended: bench/asr.py must not shadow the asr package


from kb_rerank_fit import fit_reranker  # noqa: E402
from kb_tuning import MENU, CachedEmbedder, load_tuning, main_menu_intents  # noqa: E402

from knowledge_base import calibration  # noqa: E402
from knowledge_base.calibration import (  # noqa: E402
    FEATURES,
    RERANK_FEATURES,
    Calibration,
    Logistic,
    Reranker,
    Rule,
    preselection_order,
)
from knowledge_base.embedding import MODEL_NAME, SEED_PATH, get_embedder, stored_texts, write_seed  # noqa: E402
from knowledge_base.matcher import Analysis, Matcher, default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402
from knowledge_base.title import make_title  # noqa: E402

LEX_WEIGHTS = (0.0, 0.05, 0.1, 0.2)
OPTION_BONUSES = (0.0, 0.02, 0.05)
FOLDS = 5
MAX_KEPT_VARIANTS = 2  # a thinned entry keeps its question and 0..this many random variants


def thinned(entries: list, seed: int) -> list:
    """A copy of the KB as sparse as a real court's FAQ: each entry keeps its question and 0–2 random variants."""
    rng = random.Random(seed)
    out = []
    for e in entries:
        k = rng.randint(0, min(MAX_KEPT_VARIANTS, len(e.variants)))
        out.append(e.model_copy(update={"variants": rng.sample(list(e.variants), k)}))
    return out


def placeholder(lex_weight: float, option_bonus: float = 0.0, rerank: Reranker | None = None) -> Calibration:
    """A calibration that orders the candidates as the preselection does (or by ``rerank``), deciding nothing."""
    zero = Logistic(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES)), 0.0)
    rule = Rule(zero, zero, 1.0, 1.0, 1.0, 0.0, {})
    order = preselection_order(lex_weight, option_bonus)
    return Calibration(0, MODEL_NAME, lex_weight, option_bonus, rule, rule, rerank or order, order)


def top_right(r: dict, ids: list[str]) -> bool:
    """The first entry is right; for a question asked at a menu ("kb"): it is an entry, not an option."""
    if r.get("kb_question"):
        return bool(ids) and not ids[0].startswith("option:")
    return bool(ids) and ids[0] in right_ids(r)


def analyse_all(rows: list[dict], matchers: dict[str, Matcher], group: int = 0) -> list[tuple]:
    """(row, analysis, ranked ids, group): the group numbers an utterance across the thinned copies (CV folds)."""
    out = []
    for n, r in enumerate(rows):
        m = matchers[r.get("menu") or ""]
        a = m.analyse(r["text"], r.get("asr_confidence"))
        out.append((r, a, [m.faq_ids[i] for i in a.order], n))
    return out


def analyse_thinned(rows: list[dict], entries: list, menus: dict, settings, emb, cal, seeds: list[int]) -> list:
    done = []
    for seed in seeds:
        base = Matcher.build(thinned(entries, seed) if seed >= 0 else entries, settings, embedder=emb, cal=cal)
        matchers = {k: (base.with_intents(v) if v else base) for k, v in menus.items()}
        done += analyse_all(rows, matchers)
    return done


def collect_candidates(rows: list[dict], entries: list, menus: dict, settings, emb, cal, seeds: list[int]) -> list:
    """(row, matcher, candidates, group) per utterance and thinned copy; the group numbers the utterance."""
    out = []
    for seed in seeds:
        base = Matcher.build(thinned(entries, seed) if seed >= 0 else entries, settings, embedder=emb, cal=cal)
        matchers = {k: (base.with_intents(v) if v else base) for k, v in menus.items()}
        for n, r in enumerate(rows):
            m = matchers[r.get("menu") or ""]
            out.append((r, m, m.candidates(r["text"]), n))
    return out


def _labels(r: dict, m: Matcher, c) -> np.ndarray | None:
    if isinstance(c, Analysis) or r.get("kb_question"):
        return None
    return np.array([m.faq_ids[i] in right_ids(r) for i in c[1]])


def reranker_on(recs: list) -> Reranker:
    """The question re-ranker, fitted on the questions (not the menu navigation: at a menu candidates keep the
    preselection's order, Calibration.menu_rerank)."""
    return fit_reranker([(c[2], y) for r, m, c, _ in recs if not r.get("menu") and (y := _labels(r, m, c)) is not None])


def oof_rerank(recs: list) -> list[tuple]:
    """(row, analysis, ranked ids, group) with each question ordered by a re-ranker fitted without it."""
    done: list[tuple] = [None] * len(recs)  # type: ignore[list-item]
    for f in range(FOLDS):
        rr = reranker_on([d for d in recs if d[3] % FOLDS != f])
        for i, (r, m, c, n) in enumerate(recs):
            if n % FOLDS != f:
                continue
            order = m.reranker() if r.get("menu") else rr
            a = c if isinstance(c, Analysis) else m.order(*c, order.scores(c[2]), r.get("asr_confidence"))
            done[i] = (r, a, [m.faq_ids[j] for j in a.order], n)
    return done


def right_ids(r: dict) -> set[str]:
    return {r["expected"], *r.get("also", [])} if r["expected"] else set()


def simulate(rows, p, p3, answer, confirm, offer, window) -> dict:
    """The decision on out-of-fold probabilities (the same rule as Matcher._decide)."""
    n_in = n_oos = answered = right = resolved = oos_wrong = oos_offered = handoff = 0
    for (r, a, ids, *_), pi, p3i in zip(rows, p, p3, strict=True):
        ok = right_ids(r)
        n_in += bool(ok)
        n_oos += not ok
        if a.x is None:
            handoff += 1
            continue
        if pi >= answer:
            answered += 1
            right += ids[0] in ok
            resolved += ids[0] in ok
            oos_wrong += not ok
            continue
        close = [i for i, v in zip(ids, a.rank_score, strict=True) if v >= a.rank_score[0] - window][:3]
        if pi >= confirm and len(close) == 1:
            offered = [ids[0]]
        elif p3i >= offer:
            offered = close if len(close) >= 2 else ids[:2]
        else:
            handoff += 1
            continue
        resolved += bool(ok & set(offered))
        oos_offered += not ok
    return {"precision": right / answered if answered else 1.0, "answer_recall": right / max(n_in, 1),
            "resolution": resolved / max(n_in, 1), "oos_answered": oos_wrong / max(n_oos, 1),
            "oos_offered": oos_offered / max(n_oos, 1), "handoff_share": handoff / max(len(rows), 1),
            "answered": answered, "in_scope": n_in, "out_of_scope": n_oos}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=0.985, help="precision of direct answers to reach in CV")
    ap.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    ap.add_argument("--out", type=Path, default=calibration.DEFAULT_PATH)
    ap.add_argument("--thin-seeds", type=int, default=4,
                    help="thinned copies of the default KB to calibrate on (0: the full KB only)")
    ap.add_argument("--menu", type=Path, default=MENU, help="menu YAML whose main node's phrases rank the options")
    ap.add_argument("--lex-weight", type=float, help="skip the search: this preselection weight of the lexical score")
    ap.add_argument("--option-bonus", type=float, help="skip the search: this preselection bonus of menu options")
    args = ap.parse_args()

    settings = MatcherSettings()
    menus = {"": [], "main": main_menu_intents(args.menu)}
    rows, sources = load_tuning(nav=bool(menus["main"]))
    emb = CachedEmbedder(get_embedder())
    entries = load_entries(default_kb_path())
    print(f"tuning rows: {len(rows)} from {', '.join(sources)}")

    seeds = list(range(1, args.thin_seeds + 1)) or [-1]  # -1: the full KB
    print(f"calibrating on {'the full KB' if seeds == [-1] else f'{len(seeds)} thinned copies of the KB'}")
    best = None  # the preselection's weights, by the top-1 of the preselection alone
    for w in LEX_WEIGHTS if args.lex_weight is None else (args.lex_weight,):
        bonuses = OPTION_BONUSES if args.option_bonus is None else (args.option_bonus,)
        for bonus in bonuses if menus["main"] else (0.0,):
            done = analyse_thinned(rows, entries, menus, settings, emb, placeholder(w, bonus), seeds[:1])
            ins = [(r, ids) for r, _, ids, _ in done if right_ids(r) or r.get("kb_question")]
            top1 = sum(top_right(r, ids) for r, ids in ins) / len(ins)
            top3 = sum(bool(right_ids(r) & set(ids[:3])) or top_right(r, ids) for r, ids in ins) / len(ins)
            print(f"lex_weight {w:4.2f} option_bonus {bonus:4.2f}: top1 {top1:.4f} top3 {top3:.4f}")
            if best is None or (top1, top3) > best[2:4]:
                best = (w, bonus, top1, top3, done)
    w, bonus, top1, top3, _ = best
    print(f"chosen lex_weight {w}, option_bonus {bonus} (preselection top1 {top1:.4f}, top3 {top3:.4f})")
    recs = collect_candidates(rows, entries, menus, settings, emb, placeholder(w, bonus), seeds)
    done = oof_rerank(recs)
    ins = [(r, ids) for r, _, ids, _ in done if right_ids(r) or r.get("kb_question")]
    top1 = sum(top_right(r, ids) for r, ids in ins) / len(ins)
    top3 = sum(bool(right_ids(r) & set(ids[:3])) or top_right(r, ids) for r, ids in ins) / len(ins)
    q = [(r, ids) for r, _, ids, _ in done if right_ids(r) and not r.get("menu")]
    print(f"re-ranked (out of fold): top1 {top1:.4f} top3 {top3:.4f}; questions only: top1 "
          f"{sum(ids[0] in right_ids(r) for r, ids in q if ids) / len(q):.4f}")
    rerank = reranker_on(recs)
    print("re-ranker coefficients:", dict(zip(RERANK_FEATURES, np.round(rerank.coef, 3).tolist(), strict=True)))

    # a question asked at the menu ("kb" in nav files) names no entry: only an option winning it is known wrong
    done = [d for d in done if not (d[0].get("kb_question") and d[2] and not d[2][0].startswith("option:"))]
    faq = fit_rule("faq", [d for d in done if not d[0].get("menu")], args.target)
    nav = [d for d in done if d[0].get("menu")]
    menu = fit_rule("menu", nav, args.target) if len(nav) >= 50 else faq
    cal = Calibration(calibration.stored_version(args.out) + 1, MODEL_NAME, w, bonus, faq, menu, rerank,
                      preselection_order(w, bonus))
    if menus["main"]:
        cal = choose_option_window(cal, [r for r in rows if r.get("menu")], entries, menus["main"], settings, emb)
    for rule in (faq, menu):
        rule.figures.update({"top1": round(top1, 4), "top3": round(top3, 4), "sources": sources,
                             "target_precision": args.target})
    if args.dry_run:
        return
    calibration.save(cal, args.out)
    texts = [t for e in entries for t in stored_texts(e.title or make_title(e.question), e.question, e.variants,
                                                      e.answer)]
    texts += [t for o in menus["main"] for t in (o.title, *o.phrases)]
    write_seed(emb.inner, texts)
    print(f"wrote {SEED_PATH.relative_to(ROOT)} ({len(set(texts))} texts of the default KB and the main menu)")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} (version {cal.version})")


OPTION_WINDOWS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 1.0)  # at a menu candidates keep the preselection score


def choose_option_window(cal: Calibration, rows: list[dict], entries: list, intents: list, settings,
                         emb) -> Calibration:
    """The option-vs-entry arbitration at a menu, on nav_tune.jsonl: when an entry ranks first, the question
    rule decides unless an option is within the window. Chosen to maximise menu utterances resolved (the
    option answered/offered, or for a question: an entry answered) minus 5 × wrong navigation (an entry answered
    where the caller named an option)."""
    rows = list({r["text"]: r for r in rows}.values())
    scores = []
    for win in OPTION_WINDOWS:
        c = Calibration(cal.version, cal.model, cal.lex_weight, cal.option_bonus, cal.faq, cal.menu, cal.rerank,
                        cal.menu_rerank, win)
        m = Matcher.build(entries, settings, embedder=emb, cal=c).with_intents(intents)
        good = wrong = kb_answered = 0
        for r in rows:
            res = m.match(r["text"], asr_confidence=r.get("asr_confidence"))
            if r.get("kb_question"):
                kb_answered += res.decision == "answer" and res.faq_id is not None
                good += res.decision == "answer" and res.faq_id is not None
            elif r["expected"]:
                hit = f"option:{res.option}" if res.option else None
                good += hit in right_ids(r) or bool(right_ids(r) & set(res.offered))
                wrong += res.decision == "answer" and res.faq_id is not None
        print(f"option_window {win:4.2f}: resolved {good}, kb questions answered {kb_answered}, "
              f"wrong navigation {wrong} of {len(rows)}")
        scores.append((good - 5 * wrong, -win, win))
    win = max(scores)[2]
    print(f"chosen option_window {win}")
    return Calibration(cal.version, cal.model, cal.lex_weight, cal.option_bonus, cal.faq, cal.menu, cal.rerank,
                       cal.menu_rerank, win)


def _model():  # scikit-learn is imported only here: the package applies the JSON coefficients with numpy
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))


#: clarify windows: in re-ranker score (logit) units for questions, preselection score (cosine) units at a menu
WINDOWS = {"faq": (0.25, 0.5, 1.0, 1.5, 2.0, 3.0), "menu": (0.005, 0.01, 0.02, 0.03, 0.05)}


#: the menu rule reads fewer features: 123 navigation utterances do not carry all of them (with all, its
#: out-of-fold answers never reached the target precision)
RULE_FEATURES = {"menu": ("sem", "sem_margin", "z_gap3", "lex", "lex_margin", "agree", "unknown", "length", "asr",
                          "asr_given", "option")}


def fit_rule(name: str, done: list, target: float) -> Rule:
    """Out-of-fold probabilities (5-fold stratified CV), thresholds from them, then the fit on all rows."""
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    usable = [d for d in done if d[1].x is not None]
    cols = [FEATURES.index(f) for f in RULE_FEATURES.get(name, FEATURES)]
    X = np.stack([d[1].x for d in usable])[:, cols]
    y1 = np.array([bool(d[2]) and d[2][0] in right_ids(d[0]) for d in usable], dtype=int)
    y3 = np.array([bool(right_ids(d[0]) & set(d[2][:3])) for d in usable], dtype=int)
    groups = np.array([d[3] for d in usable])  # all thinned copies of an utterance in the same fold
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=12368)
    oof1 = np.zeros(len(done))
    oof3 = np.zeros(len(done))
    idx = [i for i, d in enumerate(done) if d[1].x is not None]
    oof1[idx] = cross_val_predict(_model(), X, y1, groups=groups, cv=cv, method="predict_proba")[:, 1]
    oof3[idx] = cross_val_predict(_model(), X, y3, groups=groups, cv=cv, method="predict_proba")[:, 1]

    answer = 1.0
    for t in sorted(set(np.round(oof1[idx], 3)) | {0.5}, reverse=True):
        sim = simulate(done, oof1, oof3, t, 2.0, 2.0, 0.0)
        if sim["answered"] >= 10 and sim["precision"] >= target:
            answer = float(t)  # the lowest threshold whose answers still reach the target
    scores = []
    windows = WINDOWS[name]
    for confirm in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        if confirm > answer:
            continue
        for offer in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            for window in windows:
                sim = simulate(done, oof1, oof3, answer, confirm, offer, window)
                scores.append((sim["resolution"] - 0.5 * sim["oos_offered"], confirm, offer, window, sim))
    _, confirm, offer, window, cv_fig = max(scores, key=lambda s: s[0])
    cv_fig = {k: round(v, 4) if isinstance(v, float) else v for k, v in cv_fig.items()}
    print(f"[{name}] {len(done)} rows; thresholds (CV): answer p >= {answer:.3f}, confirm p >= {confirm}, "
          f"offer p(top3) >= {offer}, clarify window {window}")
    print(f"[{name}] CV figures: {json.dumps(cv_fig)}")

    def fit(y: np.ndarray) -> Logistic:
        m = _model().fit(X, y)
        sc, lr = m[0], m[1]
        mean, scale, coef = np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES))
        mean[cols], scale[cols], coef[cols] = sc.mean_, sc.scale_, lr.coef_[0]  # unused features: weight 0
        return Logistic(mean, scale, coef, float(lr.intercept_[0]))

    rule = Rule(fit(y1), fit(y3), round(answer, 3), confirm, offer, window, {"rows": len(done), "cv": cv_fig})
    print(f"[{name}] coefficients p(top):", dict(zip(FEATURES, np.round(rule.top.coef, 3).tolist(), strict=True)))
    return rule


if __name__ == "__main__":
    main()
