"""A menu node's spoken options as matcher intents, read from the IVR's menu YAML.

The dialogue's YAML gives each choice of a ``gather`` step its target and, for speech, a title and example
phrases; both shapes are read::

    choices:
      "5": complaint                                   # keys only: no phrases, not offered to speech
      "5": {goto: complaint, title: 投诉信访, phrases: [我要投诉, 我要反映问题]}

Only choices with phrases become intents (the keypad alone needs none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from knowledge_base.matcher import Intent

TITLE_KEYS = ("title", "name", "label")
PHRASE_KEYS = ("phrases", "examples", "say")


class MenuIntentError(ValueError):
    """The menu file or node cannot give intents (the message names the file and node)."""


def _gather_choices(steps: Any) -> dict[str, Any]:
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and isinstance(step.get("gather"), dict):
            choices = step["gather"].get("choices")
            if isinstance(choices, dict):
                return {str(k): v for k, v in choices.items()}
    return {}


def intents_from_menu(doc: dict[str, Any], node: str) -> list[Intent]:
    nodes = doc.get("nodes", doc) if isinstance(doc, dict) else {}
    if not isinstance(nodes, dict) or node not in nodes:
        raise MenuIntentError(f"menu node {node!r} not found")
    out: list[Intent] = []
    for key, value in _gather_choices(nodes[node]).items():
        if not isinstance(value, dict):
            continue
        phrases = next((value[k] for k in PHRASE_KEYS if isinstance(value.get(k), list)), [])
        phrases = [str(p).strip() for p in phrases if str(p).strip()]
        title = next((str(value[k]) for k in TITLE_KEYS if value.get(k)), phrases[0] if phrases else "")
        if phrases and title:
            out.append(Intent(key=key, title=title, phrases=phrases))
    return out


def load_menu_intents(path: Path, node: str = "main") -> list[Intent]:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise MenuIntentError(f"menu file {path} unreadable: {e}") from e
    try:
        return intents_from_menu(doc, node)
    except MenuIntentError as e:
        raise MenuIntentError(f"{path}: {e}") from None
