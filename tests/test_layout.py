"""The package layout of DESIGN: imports go one way, and every command explains itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("zh_text", "table_import", "tts", "sip_config", "asr", "knowledge_base", "work_orders", "court_cases",
            "ivr", "agent_console", "hotline")
# what each package may import from the others (hotline is the composition root)
ALLOWED = {
    "zh_text": set(),
    "tts": set(),
    "sip_config": set(),
    "asr": {"zh_text"},
    "table_import": set(),
    "knowledge_base": {"zh_text", "table_import"},
    # order classification uses the one embedding model the knowledge base loads (a hub holds a single copy);
    # the work orders' tables use the shared UTC timestamp type and naming (knowledge_base/db_types.py)
    "work_orders": {"knowledge_base.embedding", "knowledge_base.db_types"},
    # the case system: its tables use the shared UTC timestamp type and naming (knowledge_base/db_types.py)
    "court_cases": {"zh_text", "table_import", "knowledge_base.db_types"},
    # the IVR's working hours use the hotline's one calendar of working days (work_orders/calendar.py)
    "ivr": {"sip_config", "asr", "knowledge_base", "zh_text", "work_orders.calendar"},
    "agent_console": {"knowledge_base", "work_orders", "court_cases", "ivr.contract", "zh_text"},
    "hotline": set(PACKAGES) - {"hotline"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_design(package):
    bad = []
    for f in (ROOT / package).rglob("*.py"):
        for mod in _imports(f):
            top = mod.split(".")[0]
            if top not in PACKAGES or top == package:
                continue
            if not any(mod == a or mod.startswith(a + ".") or top == a for a in ALLOWED[package]):
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def _commands(app, prefix=()):
    import typer.main

    group = typer.main.get_command(app)
    stack = [(prefix, group)]
    while stack:
        path, cmd = stack.pop()
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append((path + (name,), sub))


def test_every_command_has_help():
    from hotline.cli import app

    runner = CliRunner()
    paths = list(_commands(app))
    assert ("dial",) in paths and ("users", "add") in paths and ("calls", "list") in paths and ("doctor",) in paths
    for path in paths:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output, (path, r.output)
        if path:
            assert r.output.count("\n") > 3, path
