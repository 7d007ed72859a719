"""Writes hotline.example.toml from the settings models, so the example never drifts from the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hotline.settings import Settings

HEADER = """\
# hotline.example.toml — every setting with its default, commented out.
# Copy to hotline.toml (or point HOTLINE_CONFIG / --config at a copy) and uncomment what you change.
# Each key can also come from the environment: HOTLINE_<SECTION>__<KEY>, e.g. HOTLINE_SIP__PORT=5062.
# Regenerate after changing the settings models: hotline config example > hotline.example.toml
"""


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, Path):
        return json.dumps(str(v))
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if v is None:
        return '""  # unset'
    return json.dumps(str(v), ensure_ascii=False)


def _section(model: type[BaseModel], instance: BaseModel, prefix: str, lines: list[str]) -> None:
    nested: list[tuple[str, type[BaseModel], BaseModel]] = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        value = getattr(instance, name)
        if isinstance(value, BaseModel):
            nested.append((name, type(value), value))
            continue
        if field.description:
            lines.append(f"# {field.description}")
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            continue
        if isinstance(value, Path) and value.is_absolute():
            value = "(bundled)"
            lines.append(f"# {name} = \"{value}\"")
            continue
        if isinstance(value, list):
            value = [str(x) if not isinstance(x, int | float | bool) else x for x in value]
        lines.append(f"# {name} = {_toml_value(value)}")
    for name, cls, inst in nested:
        lines.append("")
        lines.append(f"# [{prefix}{name}]")
        _section(cls, inst, f"{prefix}{name}.", lines)


def render() -> str:
    lines = [HEADER]
    _section(Settings, Settings(), "", lines)
    lines += [
        "",
        "# Registration to a PBX or SIP trunk (worker w0 registers, with Kamailio as the contact):",
        "# [[sip.accounts]]",
        '# name = "court-pbx"',
        '# id_uri = "sip:12368@pbx.court.example"',
        '# registrar = "sip:pbx.court.example"',
        '# username = "12368"',
        '# password = "secret"',
        "",
    ]
    return "\n".join(lines)
