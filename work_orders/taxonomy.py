"""Subcategories and tags: a tree below each of the six categories, and one tag list, from a YAML file.

The court edits the file (``[work_orders] taxonomy_file``; the bundled ``data/taxonomy.yaml`` is the
default); orders are checked against it. A subcategory is a path of node names joined by ``/``
(``立案/网上立案``); any node is a valid subcategory, not only leaves. The tree takes the size of a large
intake system (a city's mailbox runs 6 / 15 / 54 nodes per level and 150 tags) and more::

    categories:
      consult:
        立案:
          网上立案:
          立案材料:
        诉讼费: [缴费, 退费]       # a list of leaves is a shorthand
    tags: [回电, 材料, 缴费]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from work_orders.settings import CATEGORIES, CATEGORY_NAMES

DEFAULT_PATH = Path(__file__).parent / "data" / "taxonomy.yaml"
#: where ``hotline orders taxonomy import`` puts the court's file when ``taxonomy_file`` is unset
IMPORTED_NAME = "taxonomy.yaml"
SEP = "/"
MAX_PATH = 255
MAX_NAME = 64
MAX_DEPTH = 10
MAX_TAG = 32
MAX_TAGS_PER_ORDER = 20


class TaxonomyError(ValueError):
    """The taxonomy file is malformed; the message names the file and the entry."""


class Invalid(ValueError):
    """An order's subcategory or tags are not in the taxonomy; ``message`` is Simplified Chinese."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field, self.message = field_name, message


@dataclass(frozen=True)
class Node:
    name: str
    children: tuple[Node, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "children": [c.as_dict() for c in self.children]}


@dataclass(frozen=True)
class Taxonomy:
    trees: dict[str, tuple[Node, ...]]
    tags: tuple[str, ...]
    paths: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def tag_set(self) -> frozenset[str]:
        return frozenset(self.tags)

    def check_subcategory(self, category: str, path: str) -> str:
        path = SEP.join(p.strip() for p in (path or "").strip().strip(SEP).split(SEP)) if path.strip() else ""
        if not path:
            return ""
        if len(path) > MAX_PATH:
            raise Invalid("subcategory", f"子类不能超过{MAX_PATH}字")
        if path not in self.paths.get(category, frozenset()):
            raise Invalid("subcategory", f"“{CATEGORY_NAMES.get(category, category)}”下没有子类“{path}”")
        return path

    def check_tags(self, tags: list[str]) -> list[str]:
        out: list[str] = []
        for t in (t.strip() for t in tags):
            if t and t not in out:
                out.append(t)
        if len(out) > MAX_TAGS_PER_ORDER:
            raise Invalid("tags", f"标签不能超过{MAX_TAGS_PER_ORDER}个")
        unknown = [t for t in out if t not in self.tag_set]
        if unknown:
            raise Invalid("tags", "未知的标签：" + "、".join(unknown))
        return out

    def counts(self) -> list[int]:
        """Nodes per level below the categories (level 1 = the six categories themselves)."""
        levels = [len(self.trees)]
        frontier = [n for nodes in self.trees.values() for n in nodes]
        while frontier:
            levels.append(len(frontier))
            frontier = [c for n in frontier for c in n.children]
        return levels

    def as_dict(self) -> dict[str, Any]:
        return {"categories": {c: {"name": CATEGORY_NAMES[c], "children": [n.as_dict() for n in nodes]}
                               for c, nodes in self.trees.items()},
                "tags": list(self.tags)}


def _nodes(value: Any, where: str, depth: int) -> tuple[Node, ...]:
    if value is None or value == "" or value == {} or value == []:
        return ()
    if depth > MAX_DEPTH:
        raise TaxonomyError(f"{where}: deeper than {MAX_DEPTH} levels")
    items: list[tuple[str, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            if isinstance(v, dict) and len(v) == 1:
                items.append(next(iter(v.items())))
            elif isinstance(v, str | int):
                items.append((str(v), None))
            else:
                raise TaxonomyError(f"{where}[{i}]: expected a name or a one-key mapping")
    else:
        raise TaxonomyError(f"{where}: expected a mapping or a list of names")
    seen: set[str] = set()
    out = []
    for name, children in items:
        name = str(name).strip()
        if not name or SEP in name or len(name) > MAX_NAME:
            raise TaxonomyError(f"{where}: bad node name {name!r} (1-{MAX_NAME} characters, no '{SEP}')")
        if name in seen:
            raise TaxonomyError(f"{where}: {name!r} appears twice")
        seen.add(name)
        out.append(Node(name, _nodes(children, f"{where}/{name}", depth + 1)))
    return tuple(out)


def _paths(nodes: tuple[Node, ...], prefix: str, out: set[str], where: str) -> None:
    for n in nodes:
        p = f"{prefix}{SEP}{n.name}" if prefix else n.name
        if len(p) > MAX_PATH:
            raise TaxonomyError(f"{where}: path {p[:40]!r}... is longer than {MAX_PATH} characters")
        out.add(p)
        _paths(n.children, p, out, where)


def parse(data: Any, where: str = "taxonomy") -> Taxonomy:
    if not isinstance(data, dict) or set(data) - {"categories", "tags"}:
        raise TaxonomyError(f"{where}: expected only the keys 'categories' and 'tags'")
    cats = data.get("categories") or {}
    if not isinstance(cats, dict):
        raise TaxonomyError(f"{where}: 'categories' must be a mapping")
    unknown = set(cats) - set(CATEGORIES)
    if unknown:
        raise TaxonomyError(f"{where}: unknown categories {sorted(unknown)}; known: {', '.join(CATEGORIES)}")
    trees = {c: _nodes(cats.get(c), f"{where}: {c}", 1) for c in CATEGORIES}
    paths: dict[str, frozenset[str]] = {}
    for c, nodes in trees.items():
        found: set[str] = set()
        _paths(nodes, "", found, f"{where}: {c}")
        paths[c] = frozenset(found)
    tags = data.get("tags") or []
    if not isinstance(tags, list):
        raise TaxonomyError(f"{where}: 'tags' must be a list")
    clean: list[str] = []
    for i, t in enumerate(tags):
        t = str(t).strip()
        if not t or len(t) > MAX_TAG:
            raise TaxonomyError(f"{where}: tags[{i}] must be 1-{MAX_TAG} characters")
        if t in clean:
            raise TaxonomyError(f"{where}: tag {t!r} appears twice")
        clean.append(t)
    return Taxonomy(trees, tuple(clean), paths)


@lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> Taxonomy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise TaxonomyError(f"{path}: cannot read the taxonomy file: {e}") from None
    return parse(data or {}, str(path))


def load(path: Path | None = None) -> Taxonomy:
    """The taxonomy of ``path`` (the bundled one when None), re-read when the file changes."""
    p = Path(path) if path is not None else DEFAULT_PATH
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as e:
        raise TaxonomyError(f"{p}: cannot read the taxonomy file: {e}") from None
    return _load(p, mtime)


def court_file(taxonomy_file: Path | None, home: Path) -> Path | None:
    """The court's taxonomy file: ``work_orders.taxonomy_file``, else ``<home>/taxonomy.yaml`` once imported
    (``hotline orders taxonomy import``), else None (the bundled one)."""
    if taxonomy_file is not None:
        return Path(taxonomy_file)
    imported = Path(home) / IMPORTED_NAME
    return imported if imported.exists() else None
