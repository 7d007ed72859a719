"""Suggested classification of an order from what the caller said or wrote: category, subcategory path, tags and
a calibrated confidence.

How (fitted and measured by ``bench/classify_fit.py`` on ``tests/data/orders_tune.jsonl`` only; held-out figures
from ``bench/classify_eval.py``):

- **category** (the caller's intent: asking how, asking a status, urging, reaching the judge, complaining,
  suggesting) and **second-level subcategory** — two logistic regressions each, one over the text's e5 vector, one
  over its character 1-2-grams plus counts of intent words (:data:`INTENT_CUES`: 催、投诉、建议、转告 …), their
  probabilities averaged, each class weighted by 1 / its share of the examples (``class_weight``); the
  subcategory's is blended with its best path score (``path_weight``);
- **path** below the subcategory — nearest labelled examples (mean of the top similarities of each path's
  examples) plus the similarity to the node's own name ("催办：催执行，执行款发放"), so a node a court adds by
  importing its taxonomy is found by its name before it has examples;
- **tags** — a similarity-weighted vote of the nearest examples, plus tags whose word appears in the text;
- **confidence** — a logistic calibration (fitted on cross-validated predictions) of the chance that category and
  second-level subcategory are both right.

The labelled examples are the tuning set, bundled as ``data/order_examples.jsonl`` with their vectors and the fitted
regressions (``classify_vectors.npz``, ``classify_fitted.npz``, used while they match); examples whose path is not
in the current taxonomy are cut to their longest valid prefix, so a replaced taxonomy keeps working (refitted on
first use).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from work_orders import embedding
from work_orders.settings import CATEGORIES, CATEGORY_NAMES
from work_orders.taxonomy import SEP, Taxonomy

DATA = Path(__file__).parent / "data"
EXAMPLES_PATH = DATA / "order_examples.jsonl"
PARAMS_PATH = DATA / "classify_params.json"
#: vectors of the examples and node names, bundled by the fit script so a hub need not embed them at start
VECTORS_PATH = DATA / "classify_vectors.npz"
#: the regressions fitted on the bundled examples (coefficients, n-gram vocabulary), used when they match
FITTED_PATH = DATA / "classify_fitted.npz"
_BUILD = ("lr_c_vector", "lr_c_words", "cue_scale")
#: build weights added later: in the fingerprint only when not at their default, so older fitted files still match
_BUILD_OPTIONAL = {"class_weight": "", "ngram_weighting": "sublinear"}
#: tags the hub sets from how an order came in, never from its words
PROCESS_TAGS = frozenset({"回电", "留言", "非工作时间", "即办", "知识库解答", "网上诉求", "来访", "来信", "重复来电",
                          "转人工", "语音留言"})
MAX_TAGS = 5
#: words that say what the caller wants done (counted as features beside the n-grams; their weights are fitted):
#: few examples per category cannot teach a regression that 举报 is a complaint and 表扬 a suggestion
INTENT_CUES = {
    "complaint": ("投诉", "举报", "态度", "不公", "违规", "违法", "不作为", "申诉", "信访", "上访", "不服", "糊弄",
                  "偏袒", "偏向", "红包", "好处费", "刁难", "恶劣", "反映"),
    "suggestion": ("建议", "希望", "表扬", "点赞", "感谢", "谢谢", "提个意见", "增加", "最好", "改进"),
    "urge": ("催", "尽快", "快点", "加快", "督促", "怎么还没", "怎么还不", "一直没", "一直不", "还没", "拖", "赶紧",
             "赶快"),
    "contact_judge": ("转告", "转达", "告诉法官", "跟法官说", "通知法官", "回电", "回个电话", "约见", "面谈", "见面",
                      "交给法官", "补交", "留言", "留个话", "法官说"),
    "query": ("查", "到哪", "进度", "了没", "了吗", "是多少", "电话", "什么时候", "哪天", "状态", "情况"),
    "consult": ("怎么", "如何", "需要", "要带", "能不能", "可以吗", "多少钱", "什么", "哪里", "流程", "吗"),
}


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    path: tuple[str, ...]
    tags: tuple[str, ...] = ()


@dataclass
class Params:
    """What ``bench/classify_fit.py`` chooses by cross-validation on the tuning set."""

    knn_top: int = 2            # a path's example score: mean of its best ``knn_top`` similarities
    name_weight: float = 0.5    # path score = example score + name_weight * name similarity
    lr_c_vector: float = 100.0  # inverse regularisation of the regressions over the e5 vector
    lr_c_words: float = 100.0   # ... and over the character n-grams and intent cues
    vector_weight: float = 0.5  # probability = vector_weight * P(vector) + (1 - vector_weight) * P(words)
    cue_scale: float = 0.3      # weight of the intent cue counts beside the n-grams
    #: "balanced": the regressions weight each class by 1 / its share of the examples (consult is a third of them)
    class_weight: str = ""
    #: n-gram weights: "sublinear" (tf-idf, 1 + log tf), "tfidf" (raw tf), "counts" (no idf, no norm)
    ngram_weighting: str = "sublinear"
    #: prior correction: each regression probability is divided by its class's share of the examples ** this
    prior_power: float = 0.0
    path_weight: float = 0.0    # category and subcategory scores add path_weight * softmax(best path scores)
    path_temperature: float = 0.03
    tag_k: int = 8
    tag_temperature: float = 0.05
    tag_threshold: float = 0.4
    tag_word_bonus: float = 0.3
    #: confidence = sigmoid(c0 + c1 * category score + c2 * category margin + c3 * subcategory score)
    calibration: list[float] = field(default_factory=lambda: [-2.0, 4.0, 2.0, 2.0])

    @classmethod
    def load(cls, path: Path = PARAMS_PATH) -> Params:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.get("params", data).items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Suggestion:
    category: str
    path: list[str]
    tags: list[str]
    confidence: float

    @property
    def subcategory(self) -> str:
        return SEP.join(self.path)

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "category_name": CATEGORY_NAMES[self.category], "path": list(self.path),
                "subcategory": self.subcategory, "tags": list(self.tags), "confidence": round(self.confidence, 3)}


class VectorCache:
    """Vectors of texts seen before (read from ``path`` when it was made with the same model), else embedded."""

    def __init__(self, embed: embedding.Embed = embedding.embed, path: Path | None = VECTORS_PATH, *,
                 remember: bool = False):
        self._embed, self.remember = embed, remember  # remember: keep new texts (the fit script; a hub does not)
        self.memo: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as z:
                if str(z["model"]) == embedding.MODEL_NAME:
                    self.memo = {str(t): v.astype(np.float32) for t, v in zip(z["texts"], z["vectors"], strict=True)}

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        new = dict(zip(todo, self._embed(todo), strict=True)) if todo else {}
        if self.remember:
            self.memo.update(new)
        if not texts:
            return np.zeros((0, embedding.DIM), np.float32)
        return np.stack([self.memo[t] if t in self.memo else new[t] for t in texts])

    def save(self, path: Path, texts: list[str]) -> None:
        keep = [t for t in dict.fromkeys(texts) if t in self.memo]
        np.savez_compressed(path, model=np.array(embedding.MODEL_NAME), texts=np.array(keep),
                            vectors=np.stack([self.memo[t] for t in keep]).astype(np.float16))


def node_texts(taxonomy: Taxonomy) -> list[str]:
    return [_node_text(c, p) for c in CATEGORIES for p in sorted(taxonomy.paths[c])]


def load_examples(path: Path) -> list[Example]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Example(str(d["text"]), str(d["category"]), tuple(d.get("path") or ()),
                               tuple(d.get("tags") or ())))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a labelled example ({e})") from None
    return out


def fit_to(examples: list[Example], taxonomy: Taxonomy) -> list[Example]:
    """Examples as the taxonomy allows: paths cut to their longest valid prefix, unknown tags dropped."""
    out = []
    for e in examples:
        if e.category not in CATEGORIES:
            continue
        path = e.path
        while path and SEP.join(path) not in taxonomy.paths.get(e.category, frozenset()):
            path = path[:-1]
        out.append(Example(e.text, e.category, path, tuple(t for t in e.tags if t in taxonomy.tag_set)))
    return out


def _node_text(category: str, path: str) -> str:
    return f"{CATEGORY_NAMES[category]}：{path.replace(SEP, '，')}"


def _predict(model: tuple[np.ndarray, np.ndarray, list[str]], x: Any) -> np.ndarray:
    """A multinomial logistic regression's probabilities for one row (as scikit-learn's predict_proba)."""
    coef, intercept, _ = model
    z = np.asarray(x @ coef.T).reshape(-1) + intercept
    e = np.exp(z - z.max())
    return e / e.sum()


def _vectorizer(weighting: str, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    """Character 1-2-grams weighted as ``Params.ngram_weighting`` says."""
    if weighting not in ("sublinear", "tfidf", "counts"):
        raise ValueError(f"unknown n-gram weighting {weighting!r}")
    kw: dict[str, Any] = ({"use_idf": False, "norm": None} if weighting == "counts"
                          else {"sublinear_tf": weighting == "sublinear"})
    return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), vocabulary=vocabulary, **kw)


def _softmax(x: np.ndarray, t: float) -> np.ndarray:
    z = (x - x.max()) / max(t, 1e-6)
    e = np.exp(z)
    return e / e.sum()


class Classifier:
    """Fitted on labelled examples for one taxonomy; ``vectors`` (unit rows, one per example) may be given to
    skip embedding them (the fit script reuses them across folds)."""

    def __init__(self, taxonomy: Taxonomy, examples: list[Example], params: Params | None = None, *,
                 embed: embedding.Embed = embedding.embed, vectors: np.ndarray | None = None):
        self.taxonomy, self.params, self._embed = taxonomy, params or Params(), embed
        self.examples = fit_to(examples, taxonomy)
        if not self.examples:
            raise ValueError("no labelled examples fit the taxonomy")
        if vectors is not None and len(vectors) == len(examples) and len(self.examples) == len(examples):
            self.vectors = np.asarray(vectors, np.float32)
        else:
            self.vectors = embed([e.text for e in self.examples])
        # candidate paths: leaves, and any node that examples are labelled with
        self.candidates: dict[str, list[str]] = {}
        for c in CATEGORIES:
            labelled = {SEP.join(e.path) for e in self.examples if e.category == c and e.path}
            leaves = {p for p in taxonomy.paths[c] if not any(q.startswith(p + SEP) for q in taxonomy.paths[c])}
            self.candidates[c] = sorted(leaves | labelled)
        names = [(c, p) for c in CATEGORIES for p in self.candidates[c]]
        self._name_index = {cp: i for i, cp in enumerate(names)}
        self._name_vectors = embed([_node_text(c, p) for c, p in names]) if names else np.zeros((0, embedding.DIM))
        self._by_path: dict[tuple[str, str], np.ndarray] = {}
        for i, e in enumerate(self.examples):
            key = (e.category, SEP.join(e.path))
            self._by_path.setdefault(key, np.zeros(0, int))
            self._by_path[key] = np.append(self._by_path[key], i)
        # each label's share of the examples, for the prior correction (``prior_power``)
        self._prior: dict[str, float] = {}
        for e in self.examples:
            for label in (e.category, f"{e.category}:{e.path[0]}" if e.path else f"{e.category}:"):
                self._prior[label] = self._prior.get(label, 0.0) + 1 / len(self.examples)
        self.tags = sorted({t for e in self.examples for t in e.tags} | (set(taxonomy.tags) - PROCESS_TAGS))
        self._fit_category()

    # ------------------------------------------------------------------------------------------------ regressions
    def _fit_category(self) -> None:
        """Two regressions each for the category and for the second-level subcategory (``category:node``): one
        over the e5 vector, one over character 1-2-grams and intent cues; their probabilities are averaged.
        Read from :data:`FITTED_PATH` when that was fitted on the same examples with the same weights."""
        if self._load_fitted(FITTED_PATH):
            return
        p = self.params
        texts = [e.text for e in self.examples]
        self._tfidf = _vectorizer(p.ngram_weighting)
        words = hstack([self._tfidf.fit_transform(texts), self._cues(texts)]).tocsr()
        cats = [e.category for e in self.examples]
        subs = [f"{e.category}:{e.path[0]}" if e.path else f"{e.category}:" for e in self.examples]
        self._models: dict[str, list[tuple[np.ndarray, np.ndarray, list[str]] | None]] = {}
        for name, labels in (("category", cats), ("sub", subs)):
            fitted: list[tuple[np.ndarray, np.ndarray, list[str]] | None] = []
            for x, c in ((self.vectors, p.lr_c_vector), (words, p.lr_c_words)):
                if len(set(labels)) < 3:  # a regression needs a few classes to give each a row of weights
                    fitted.append(None)
                    continue
                m = LogisticRegression(C=c, max_iter=3000,
                                       class_weight="balanced" if p.class_weight == "balanced" else None
                                       ).fit(x, labels)
                fitted.append((m.coef_.astype(np.float32), m.intercept_.astype(np.float32), list(m.classes_)))
            self._models[name] = fitted

    def fingerprint(self) -> str:
        """What the regressions depend on: the examples, and the weights fixed when fitting."""
        h = hashlib.sha256(json.dumps([[e.text, e.category, list(e.path)] for e in self.examples]
                                      + [getattr(self.params, k) for k in _BUILD]
                                      + [[k, getattr(self.params, k)] for k, d in _BUILD_OPTIONAL.items()
                                         if getattr(self.params, k) != d], ensure_ascii=False).encode())
        return h.hexdigest()

    def save_fitted(self, path: Path = FITTED_PATH) -> None:
        arrays: dict[str, Any] = {"fingerprint": np.array(self.fingerprint()),
                                  "terms": np.array(list(self._tfidf.vocabulary_)),
                                  "columns": np.array(list(self._tfidf.vocabulary_.values())),
                                  "idf": self._tfidf.idf_ if self._tfidf.use_idf else np.zeros(0)}
        for name, models in self._models.items():
            for kind, m in zip(("vector", "words"), models, strict=True):
                if m is not None:
                    arrays[f"{name}_{kind}_coef"], arrays[f"{name}_{kind}_intercept"] = m[0], m[1]
                    arrays[f"{name}_{kind}_classes"] = np.array(m[2])
        np.savez_compressed(path, **arrays)

    def _load_fitted(self, path: Path) -> bool:
        if not path.exists():
            return False
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != self.fingerprint():
                return False
            vocab = {str(t): int(c) for t, c in zip(z["terms"], z["columns"], strict=True)}
            self._tfidf = _vectorizer(self.params.ngram_weighting, vocab)
            if self._tfidf.use_idf:
                self._tfidf.idf_ = z["idf"]
            self._models = {}
            for name in ("category", "sub"):
                self._models[name] = [
                    (z[f"{name}_{kind}_coef"], z[f"{name}_{kind}_intercept"],
                     [str(c) for c in z[f"{name}_{kind}_classes"]]) if f"{name}_{kind}_coef" in z else None
                    for kind in ("vector", "words")]
        return True

    def _cues(self, texts: list[str]) -> csr_matrix:
        counts = [[min(sum(t.count(w) for w in INTENT_CUES[c]), 2) for c in CATEGORIES] for t in texts]
        return csr_matrix(np.asarray(counts, np.float32) * self.params.cue_scale)

    def _probabilities(self, name: str, text: str, v: np.ndarray) -> dict[str, float]:
        m_vec, m_words = self._models[name]
        if m_vec is None or m_words is None:
            return {}
        words = hstack([self._tfidf.transform([text]), self._cues([text])]).tocsr()
        w = self.params.vector_weight
        q = w * _predict(m_vec, v[None, :]) + (1 - w) * _predict(m_words, words)
        return {label: float(x) for label, x in zip(m_vec[2], q, strict=True)}

    def category_probabilities(self, text: str, v: np.ndarray) -> dict[str, float]:
        """The regressions' probability of each category, and of each ``category:node`` (one dict)."""
        return self._probabilities("category", text, v) | self._probabilities("sub", text, v)

    def _corrected(self, prob: dict[str, float]) -> dict[str, float]:
        """``prob`` divided by each label's prior ** ``prior_power``, renormalised over categories and over each
        category's nodes (a regression fitted on skewed classes leans to the frequent ones)."""
        a = self.params.prior_power
        if not a or not prob:
            return prob
        raw = {k: q / self._prior.get(k, 1.0) ** a for k, q in prob.items()}
        totals: dict[bool, float] = {}
        for k, q in raw.items():
            totals[":" in k] = totals.get(":" in k, 0.0) + q
        return {k: q / (totals[":" in k] or 1.0) for k, q in raw.items()}

    # ------------------------------------------------------------------------------------------------ scoring
    def _path_scores(self, v: np.ndarray, category: str) -> list[tuple[str, float]]:
        p = self.params
        sims = self.vectors @ v
        out = []
        for path in self.candidates[category]:
            name = float(self._name_vectors[self._name_index[(category, path)]] @ v)
            idx = self._by_path.get((category, path))
            if idx is not None and len(idx):
                top = np.sort(sims[idx])[::-1][:p.knn_top]
                knn = float(top.mean())
            else:
                knn = name - 0.05  # a node without examples: its name stands in for them
            out.append((path, knn + p.name_weight * name))
        return sorted(out, key=lambda x: -x[1])

    def _tags(self, text: str, v: np.ndarray, category: str, path: str) -> list[str]:
        p = self.params
        sims = self.vectors @ v
        top = np.argsort(-sims)[:p.tag_k]
        w = np.exp((sims[top] - sims[top].max()) / max(p.tag_temperature, 1e-6))
        votes: dict[str, float] = {}
        for weight, i in zip(w, top, strict=True):
            for t in self.examples[i].tags:
                votes[t] = votes.get(t, 0.0) + float(weight)
        total = float(w.sum()) or 1.0
        scores = {t: s / total for t, s in votes.items()}
        for t in self.tags:
            if t in text:
                scores[t] = scores.get(t, 0.0) + p.tag_word_bonus
        allowed = self.taxonomy.tag_set - PROCESS_TAGS
        picked = sorted(((s, t) for t, s in scores.items() if s >= p.tag_threshold and t in allowed), reverse=True)
        return [t for _, t in picked[:MAX_TAGS]]

    def decide(self, text: str, v: np.ndarray, category: str | None = None
               ) -> tuple[str, str, float, float, float]:
        """Category, path, and the calibration's inputs: the category's score, its margin over the runner-up, and
        the second-level subcategory's score."""
        p = self.params
        if category is not None and category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}")
        per_cat = {c: self._path_scores(v, c) for c in CATEGORIES if self.candidates[c]}
        prob = self._corrected(self.category_probabilities(text, v))
        if category is not None:
            cat, cat_score, cat_margin = category, 1.0, 1.0
        else:
            best = np.array([per_cat[c][0][1] if per_cat.get(c) else -1.0 for c in CATEGORIES])
            soft = _softmax(best, p.path_temperature)
            score = {c: (prob.get(c, 0.0) + p.path_weight * soft[i]) / (1 + p.path_weight)
                     for i, c in enumerate(CATEGORIES)}
            ranked = sorted(score.items(), key=lambda x: -x[1])
            cat, cat_score = ranked[0]
            cat_margin = cat_score - ranked[1][1]
        paths = per_cat.get(cat) or []
        if not paths:
            return cat, "", cat_score, cat_margin, 0.0
        # second level: the regression's probability of each node, blended with its best path's score
        tops: dict[str, float] = {}
        for path, sc in paths:
            tops.setdefault(path.split(SEP)[0], sc)
        names = list(tops)
        soft = _softmax(np.array([tops[n] for n in names]), p.path_temperature)
        sub_score = {n: (prob.get(f"{cat}:{n}", 0.0) + p.path_weight * soft[i]) / (1 + p.path_weight)
                     for i, n in enumerate(names)}
        top = max(names, key=lambda n: sub_score[n])
        total = sum(sub_score.values()) or 1.0
        path = next(pth for pth, _ in paths if pth.split(SEP)[0] == top)
        return cat, path, cat_score, cat_margin, sub_score[top] / total

    def classify_vector(self, text: str, v: np.ndarray, category: str | None = None) -> Suggestion:
        cat, path, cat_score, cat_margin, path_margin = self.decide(text, v, category)
        c0, c1, c2, c3 = self.params.calibration
        confidence = float(1 / (1 + np.exp(-(c0 + c1 * cat_score + c2 * cat_margin + c3 * path_margin))))
        return Suggestion(cat, path.split(SEP) if path else [], self._tags(text, v, cat, path), confidence)

    def classify(self, text: str, category: str | None = None) -> Suggestion:
        """The suggestion for ``text``; with ``category`` given (known from the menu or the form), only the
        path and tags are chosen, within it."""
        return self.classify_vector(text, self._embed([text])[0], category)

    def classify_many(self, texts: list[str]) -> list[Suggestion]:
        vecs = self._embed(texts)
        return [self.classify_vector(t, v) for t, v in zip(texts, vecs, strict=True)]


_cache: dict[tuple[int, str], Classifier] = {}
_cache_lock = threading.Lock()


def for_taxonomy(taxonomy: Taxonomy, examples_path: Path = EXAMPLES_PATH) -> Classifier:
    """The process's classifier for ``taxonomy`` (built on first use: a few seconds to embed the examples)."""
    key = (id(taxonomy), str(examples_path))
    with _cache_lock:
        c = _cache.get(key)
        if c is None:
            c = Classifier(taxonomy, load_examples(examples_path), Params.load(), embed=VectorCache())
            _cache.clear()  # one taxonomy at a time: a re-read file replaces the old one
            _cache[key] = c
        return c
