"""Menus as YAML data, validated on load with the file, line and reason of every error.

```yaml
version: 1
start: main
nodes:
  main:
    - play: welcome
    - gather: {prompt: main_menu, choices: {"1": case_query, "*": repeat}}
```
A node is a list of verbs; a verb is ``- name: {args}``, ``- name: value`` (its shorthand
argument) or a bare ``- name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ivr.audio import PromptLibrary
from ivr.verbs import VERBS, Verb

MAX_NODES = 500


class MenuError(Exception):
    """The menu file is invalid; ``str()`` lists ``file:line: reason`` for every problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Menu:
    source: str
    start: str
    nodes: dict[str, tuple[Verb, ...]]
    version: int = 1


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""


def _compose_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            lines[path + (key,)] = k.start_mark.line + 1
            _compose_lines(v, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _compose_lines(item, path + (i,), lines)


def _line(lines: dict[tuple, int], path: tuple) -> int:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


def parse_verb(item: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        (name, args), = item.items()
        if args is None:
            return str(name), {}
        if isinstance(args, dict):
            return str(name), args
        verb = VERBS.get(str(name))
        if verb is not None and verb.shorthand:
            return str(name), {verb.shorthand: args}
        return str(name), {"_": args}
    raise ValueError("a verb is '- name', '- name: value' or '- name: {arguments}'")


def load_menu(path: Path, prompts: PromptLibrary | None = None) -> Menu:
    """Load and validate ``path``; raise MenuError naming file:line and reason for each problem."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MenuError([f"{where}: cannot read menu: {e}"]) from None
    return parse_menu(text, where, prompts)


def parse_menu(text: str, where: str, prompts: PromptLibrary | None = None) -> Menu:
    try:
        tree = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise MenuError([f"{where}{line}: not valid YAML: {getattr(e, 'problem', e)}"]) from None
    lines: dict[tuple, int] = {}
    if tree is not None:
        _compose_lines(tree, (), lines)
    problems: list[str] = []

    def bad(p: tuple, reason: str) -> None:
        problems.append(f"{where}:{_line(lines, p)}: {'.'.join(map(str, p)) or 'menu'}: {reason}")

    if not isinstance(data, dict):
        raise MenuError([f"{where}:1: the menu must be a mapping with 'start' and 'nodes'"])
    for key in set(data) - {"version", "start", "nodes", "description"}:
        bad((key,), "unknown key")
    version = data.get("version", 1)
    if version != 1:
        bad(("version",), "only version 1 is supported")
    nodes_raw = data.get("nodes")
    if not isinstance(nodes_raw, dict) or not nodes_raw:
        bad(("nodes",), "'nodes' must be a non-empty mapping of node name -> list of verbs")
        raise MenuError(problems)
    if len(nodes_raw) > MAX_NODES:
        bad(("nodes",), f"more than {MAX_NODES} nodes")
    start = data.get("start")
    if start not in nodes_raw:
        bad(("start",), f"start node {start!r} is not defined in nodes")

    nodes: dict[str, tuple[Verb, ...]] = {}
    refs: list[tuple[tuple, str]] = []
    prompt_refs: list[tuple[tuple, str]] = []
    for name, items in nodes_raw.items():
        p = ("nodes", name)
        if not isinstance(items, list) or not items:
            bad(p, "a node must be a non-empty list of verbs")
            continue
        verbs: list[Verb] = []
        for i, item in enumerate(items):
            vp = p + (i,)
            try:
                verb_name, args = parse_verb(item)
            except ValueError as e:
                bad(vp, str(e))
                continue
            cls = VERBS.get(verb_name)
            if cls is None:
                bad(vp, f"unknown verb {verb_name!r} (known: {', '.join(sorted(VERBS))})")
                continue
            if "_" in args:
                bad(vp + (verb_name,), f"{verb_name} takes arguments as a mapping")
                continue
            try:
                verb = cls(**args)
            except ValidationError as e:
                for err in e.errors():
                    loc = tuple(err["loc"])
                    reason = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
                    bad(vp + (verb_name,) + loc, reason)
                continue
            verbs.append(verb)
            refs += [(vp + (verb_name,), r) for r in verb.node_refs()]
            prompt_refs += [(vp + (verb_name,), r) for r in verb.prompt_refs()]
        nodes[str(name)] = tuple(verbs)

    for p, ref in refs:
        if ref not in nodes_raw:
            bad(p, f"refers to node {ref!r}, which is not defined")
    if prompts is not None:
        for p, ref in prompt_refs:
            if not prompts.exists(ref):
                bad(p, f"prompt {ref!r} not found ({prompts.path(ref)})")
    if problems:
        raise MenuError(problems)
    return Menu(source=where, start=str(start), nodes=nodes, version=version)
