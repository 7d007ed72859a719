"""FAQ matcher accuracy on tests/data/kb_eval.jsonl (caller-style utterances labelled against the default KB).

Prints top-1 accuracy, precision and recall of ``answer``, the share of ``confirm`` and the wrong
answers — overall, on the tuning and held-out halves (a fixed split by CRC32 of the text), and by kind;
writes bench/results/kb_eval.json.

    .venv/bin/python bench/kb_eval.py [--show-wrong] [--show-misses]

Definitions (in-scope = ``expected`` is an entry id):
  top1        in-scope utterances whose best candidate is the expected entry (whatever the decision)
  precision   correct answers / all answers (an answer to an out-of-scope utterance is wrong)
  answer_recall   correct answers / in-scope utterances
  recall      (correct answers + correct confirms) / in-scope utterances — the caller gets the answer
  confirm_share   confirms / all utterances
  oos_handoff out-of-scope utterances handed off / out-of-scope utterances
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge_base.matcher import Matcher, MatchResult, default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402

EVAL_PATH = ROOT / "tests" / "data" / "kb_eval.jsonl"
KINDS = ("paraphrase", "colloquial", "homophone", "fragment", "out_of_scope")


def load_eval(path: Path = EVAL_PATH) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split_of(text: str) -> str:
    """Fixed split: about half the utterances are held out from tuning."""
    return "holdout" if zlib.crc32(text.encode("utf-8")) % 2 else "tune"


def metrics(pairs: Iterable[tuple[dict, MatchResult]]) -> dict:
    pairs = list(pairs)
    n = len(pairs)
    ins = [(r, m) for r, m in pairs if r["expected"]]
    oos = [(r, m) for r, m in pairs if not r["expected"]]
    answers = [(r, m) for r, m in pairs if m.decision == "answer"]
    right = [1 for r, m in answers if m.faq_id == r["expected"]]
    confirmed_right = [1 for r, m in ins if m.decision == "confirm" and m.faq_id == r["expected"]]
    top1 = [1 for r, m in ins if m.candidates and m.candidates[0].faq_id == r["expected"]]
    wrong = [{"text": r["text"], "expected": r["expected"], "answered": m.faq_id, "score": m.score,
              "margin": m.margin, "kind": r["kind"]} for r, m in answers if m.faq_id != r["expected"]]
    return {
        "n": n, "in_scope": len(ins), "out_of_scope": len(oos),
        "top1": round(len(top1) / len(ins), 4) if ins else None,
        "precision": round(len(right) / len(answers), 4) if answers else None,
        "answer_recall": round(len(right) / len(ins), 4) if ins else None,
        "recall": round((len(right) + len(confirmed_right)) / len(ins), 4) if ins else None,
        "answer_share": round(len(answers) / n, 4) if n else None,
        "confirm_share": round(sum(m.decision == "confirm" for _, m in pairs) / n, 4) if n else None,
        "oos_handoff": round(sum(m.decision == "handoff" for _, m in oos) / len(oos), 4) if oos else None,
        "oos_confirm": round(sum(m.decision == "confirm" for _, m in oos) / len(oos), 4) if oos else None,
        "wrong_answers": len(wrong), "wrong": wrong,
    }


def evaluate(matcher: Matcher, rows: list[dict]) -> dict:
    pairs = [(r, matcher.match(r["text"])) for r in rows]
    out = {"overall": metrics(pairs)}
    for split in ("tune", "holdout"):
        out[split] = metrics(p for p in pairs if split_of(p[0]["text"]) == split)
    out["by_kind"] = {k: metrics(p for p in pairs if p[0]["kind"] == k) for k in KINDS}
    out["misses"] = [{"text": r["text"], "expected": r["expected"], "decision": m.decision, "got": m.faq_id,
                      "score": m.score, "margin": m.margin, "reason": m.reason}
                     for r, m in pairs if r["expected"] and not (m.decision != "handoff" and m.faq_id == r["expected"])]
    return out


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.3f}"


def print_table(res: dict) -> None:
    cols = ("n", "top1", "precision", "answer_recall", "recall", "confirm_share", "oos_handoff", "wrong_answers")
    print(f"{'':14}" + "".join(f"{c:>14}" for c in cols))
    rows = [("overall", res["overall"]), ("tune", res["tune"]), ("holdout", res["holdout"])]
    rows += [(k, v) for k, v in res["by_kind"].items()]
    for name, m in rows:
        cells = [f"{m[c]:>14}" if isinstance(m[c], int) else f"{_fmt(m[c]):>14}" for c in cols]
        print(f"{name:14}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show-wrong", action="store_true", help="list the wrong answers")
    ap.add_argument("--show-misses", action="store_true", help="list in-scope utterances not answered or confirmed")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb_eval.json")
    args = ap.parse_args()

    settings = MatcherSettings()
    matcher = Matcher.build(load_entries(default_kb_path()), settings)
    rows = load_eval()
    t = time.perf_counter()
    res = evaluate(matcher, rows)
    elapsed = time.perf_counter() - t
    print(f"{len(rows)} utterances against {len(matcher)} entries ({elapsed * 1000 / len(rows):.2f} ms each)")
    print_table(res)
    o = res["overall"]
    print(f"goal: precision >= 0.97 -> {o['precision']}, recall (answer + confirm) >= 0.80 -> {o['recall']}")
    if args.show_wrong:
        for w in o["wrong"]:
            print("WRONG", json.dumps(w, ensure_ascii=False))
    if args.show_misses:
        for w in res["misses"]:
            print("MISS ", json.dumps(w, ensure_ascii=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    res["settings"] = settings.model_dump()
    res["split"] = "crc32(text) % 2: 1 = holdout, 0 = tune"
    args.out.write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
