"""FAQ matcher accuracy: the tuning data (with the CV figures of the fit) and the HELD-OUT data.

Tuning: tests/data/kb_eval.jsonl (+ kb_eval_more.jsonl, nav_tune.jsonl when present) against the default KB —
the data bench/kb_calibrate.py fits on; its in-sample figures flatter, the cross-validated ones (from the fit,
in knowledge_base/data/calibration.json) do not.
Held-out: tests/data/kb_heldout_faq.json + kb_heldout_eval.jsonl (another court's FAQ and questions the matcher
was never tuned on) and nav_heldout.jsonl (spoken navigation at the main menu). Run only to report: nothing is
tuned on them. Files not yet in tests/data are read from the ``evalset`` branch when it has them.

Figures (in-scope = an expected id; "also" ids count as right):
  precision      right direct answers / direct answers (an answer to an out-of-scope question is wrong)
  answer_recall  right direct answers / in-scope
  resolution     (right answered + right entry among those offered in a confirm/clarify) / in-scope
  handoff_share  handoffs / all;  oos_answered  out-of-scope answered / out-of-scope
  wrong_by_kind  wrong direct answers per kind
Writes bench/results/kb_eval.json.

    .venv/bin/python bench/kb_eval.py [--show-wrong] [--lexical]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # appended: bench/asr.py must not shadow the asr package

from kb_tuning import DATA, MENU, CachedEmbedder, load_tuning, main_menu_intents, normalise_row, read_jsonl  # noqa: E402, F401

from knowledge_base import calibration  # noqa: E402
from knowledge_base.embedding import get_embedder  # noqa: E402
from knowledge_base.entry import FaqEntry  # noqa: E402
from knowledge_base.matcher import Matcher, MatchResult, default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402

HELDOUT_FAQ, HELDOUT_EVAL, NAV_HELDOUT = "kb_heldout_faq.json", "kb_heldout_eval.jsonl", "nav_heldout.jsonl"


def read_data(name: str, branch: str = "evalset") -> str | None:
    """tests/data/<name>, else the same path on ``branch`` (the evaluation set's own branch)."""
    path = DATA / name
    if path.is_file():
        return path.read_text(encoding="utf-8")
    done = subprocess.run(["git", "-C", str(ROOT), "show", f"{branch}:tests/data/{name}"], capture_output=True)
    return done.stdout.decode("utf-8") if done.returncode == 0 else None


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def metrics(pairs: list[tuple[dict, MatchResult]]) -> dict:
    n = len(pairs)

    def ok(r: dict) -> set[str]:
        return {r["expected"], *r.get("also", [])} if r["expected"] else set()

    def got(m: MatchResult) -> str | None:
        return f"option:{m.option}" if m.option else m.faq_id

    kbq = [(r, m) for r, m in pairs if r.get("kb_question")]  # a question at the menu: no entry named
    pairs = [(r, m) for r, m in pairs if not r.get("kb_question")]
    ins = [(r, m) for r, m in pairs if r["expected"]]
    oos = [(r, m) for r, m in pairs if not r["expected"]]
    answers = [(r, m) for r, m in pairs if m.decision == "answer"]
    right = [1 for r, m in answers if got(m) in ok(r)]
    resolved = [1 for r, m in ins if (m.decision == "answer" and got(m) in ok(r))
                or (m.decision in ("confirm", "clarify") and ok(r) & set(m.offered))]
    top1 = [1 for r, m in ins if m.candidates and m.candidates[0].faq_id in ok(r)]
    wrong = [{"text": r["text"], "expected": r["expected"], "answered": got(m), "p": m.probability,
              "kind": r.get("kind")} for r, m in answers if got(m) not in ok(r)]

    def share(x: int, d: int) -> float | None:
        return round(x / d, 4) if d else None

    return {
        "n": n, "in_scope": len(ins), "out_of_scope": len(oos),
        "top1": share(len(top1), len(ins)),
        "precision": share(len(right), len(answers)),
        "answer_recall": share(len(right), len(ins)),
        "resolution": share(len(resolved), len(ins)),
        "answer_share": share(len(answers), n),
        "confirm_share": share(sum(m.decision == "confirm" for _, m in pairs), n),
        "clarify_share": share(sum(m.decision == "clarify" for _, m in pairs), n),
        "handoff_share": share(sum(m.decision == "handoff" for _, m in pairs), n),
        "oos_answered": share(sum(m.decision == "answer" for _, m in oos), len(oos)),
        "oos_offered": share(sum(m.decision in ("confirm", "clarify") for _, m in oos), len(oos)),
        "wrong_answers": len(wrong), "wrong_by_kind": dict(Counter(w["kind"] for w in wrong)), "wrong": wrong,
        # questions asked at a menu: taken to the knowledge base (an entry answered or offered), not an option
        "kb_questions": len(kbq),
        "kb_to_faq": share(sum(m.decision != "handoff" and m.option is None
                               and not any(o.startswith("option:") for o in m.offered) for _, m in kbq), len(kbq)),
        # ... and answered at once with an entry (the issue: "诉讼费什么时候退" at the main menu → answered)
        "kb_answered": share(sum(m.decision == "answer" and m.faq_id is not None for _, m in kbq), len(kbq)),
    }


def run(matcher: Matcher, rows: list[dict], intents: list | None = None) -> dict:
    pairs = [(r, matcher.match(r["text"], intents=intents if r.get("menu") else None,
                               asr_confidence=r.get("asr_confidence"))) for r in rows]
    out = {"overall": metrics(pairs)}
    kinds = sorted({r.get("kind") or "unknown" for r in rows})
    out["by_kind"] = {k: metrics([p for p in pairs if (p[0].get("kind") or "unknown") == k]) for k in kinds}
    return out


COLS = ("n", "top1", "precision", "answer_recall", "resolution", "confirm_share", "clarify_share",
        "handoff_share", "oos_answered", "wrong_answers", "kb_to_faq", "kb_answered")


def print_table(title: str, res: dict) -> None:
    print(f"\n{title}")
    print(f"{'':16}" + "".join(f"{c:>14}" for c in COLS))
    for name, m in [("overall", res["overall"]), *res["by_kind"].items()]:
        cells = [f"{m[c]:>14}" if isinstance(m[c], int) else (f"{'-':>14}" if m[c] is None else f"{m[c]:>14.3f}")
                 for c in COLS]
        print(f"{name[:16]:16}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show-wrong", action="store_true", help="list the wrong direct answers (tuning data only)")
    ap.add_argument("--lexical", action="store_true", help="the lexical-only mode (kb.semantic = false)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb_eval.json")
    ap.add_argument("--menu", type=Path, default=MENU, help="menu YAML whose main node's phrases rank the options")
    args = ap.parse_args()

    settings = MatcherSettings(semantic=not args.lexical)
    emb = None if args.lexical else CachedEmbedder(get_embedder())
    results: dict = {"mode": "lexical" if args.lexical else "semantic"}
    if not args.lexical:
        cal = calibration.load()
        results["calibration"] = {"version": cal.version, "lex_weight": cal.lex_weight,
                                  "option_bonus": cal.option_bonus}
        for name, rule in (("faq", cal.faq), ("menu", cal.menu)):
            results["calibration"][name] = {"answer": rule.answer, "confirm": rule.confirm, "offer": rule.offer,
                                            "clarify_window": rule.clarify_window, "cv": rule.figures.get("cv")}
            print(f"calibration v{cal.version} [{name}]: CV on the tuning data (out-of-fold): "
                  f"{json.dumps(rule.figures.get('cv'))}")

    intents = main_menu_intents(args.menu)
    tuning, sources = load_tuning(nav=bool(intents))
    m = Matcher.build(load_entries(default_kb_path()), settings, embedder=emb)
    t = time.perf_counter()
    results["tuning"] = run(m, tuning, intents)
    print(f"{len(tuning)} tuning utterances ({', '.join(sources)}) against {len(m)} entries "
          f"({(time.perf_counter() - t) * 1000 / max(len(tuning), 1):.1f} ms each)")
    print_table("TUNING (in-sample; the CV line above is the honest figure)", results["tuning"])
    if args.show_wrong:
        for w in results["tuning"]["overall"]["wrong"]:
            print("WRONG", json.dumps(w, ensure_ascii=False))

    faq, ev, nav = read_data(HELDOUT_FAQ), read_data(HELDOUT_EVAL), read_data(NAV_HELDOUT)
    if faq and ev:
        entries = [FaqEntry.model_validate(o) for o in json.loads(faq)]
        rows = [normalise_row(r, False) for r in jsonl(ev)]
        hm = Matcher.build(entries, settings, embedder=emb)
        results["heldout"] = run(hm, rows)
        print_table(f"HELD-OUT ({HELDOUT_EVAL}: {len(rows)} questions against {len(entries)} entries of "
                    f"{HELDOUT_FAQ})", results["heldout"])
    else:
        print(f"\nheld-out files not found ({HELDOUT_FAQ}, {HELDOUT_EVAL})")
    if nav and intents:
        rows = [normalise_row(r, True) for r in jsonl(nav)]
        results["nav_heldout"] = run(m, rows, intents)
        print_table(f"HELD-OUT NAVIGATION ({NAV_HELDOUT}: {len(rows)} utterances at the main menu, options ranked "
                    "with the default KB)", results["nav_heldout"])
    elif nav:
        print(f"\n{NAV_HELDOUT} present but the menu YAML's main node has no phrases: navigation not measured")
    o = results.get("heldout", {}).get("overall")
    if o:
        print(f"\ngoals (held-out): precision >= 0.98 -> {o['precision']}, resolution >= 0.90 -> {o['resolution']}, "
              f"answer recall >= 0.60 -> {o['answer_recall']}, out-of-scope answered <= 0.01 -> {o['oos_answered']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
