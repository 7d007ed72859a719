"""Fixtures every test module may ask for (the throw-away PostgreSQL cluster and the SQLite/PostgreSQL ``db_url``),
and how modules are spread over pytest-xdist workers."""

from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling

from tests.pg_support import (  # noqa: F401 - fixtures by name
    db_backend,
    db_url,
    migrated_db_url,
    new_db,
    pg_cluster,
    pg_head_template,
)

#: modules that decode speech in real time (calls with the speech service) or in bulk: one at a time, so a real-time
#: call's recognizer shares the 2 cores with lighter tests only, never with another decode-heavy module
SPEECH_CPU = frozenset({
    "test_after_hours_order", "test_asr", "test_asr_models", "test_asr_stream", "test_callback_e2e", "test_case_calls",
    "test_dialogue_calls", "test_message_durability", "test_operator_e2e", "test_roles", "test_speech_call",
    "test_speech_hosts", "test_speech_service", "test_speech_turns"})


class _ModuleScheduling(LoadFileScheduling):
    """``--dist loadfile``, with the SPEECH_CPU modules as one unit (run one after another on one worker)."""

    def _split_scope(self, nodeid: str) -> str:
        module = super()._split_scope(nodeid)
        return "speech_cpu" if Path(module).stem in SPEECH_CPU else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    """test.sh runs ``-n 2 --dist loadfile``: each module whole on one worker (its module fixtures start once).
    (pytest-xdist's own ``loadgroup`` marks do not work with pytest 9: it renames ``item._nodeid``, which pytest 9
    no longer reads.)"""
    return _ModuleScheduling(config, log) if config.getvalue("dist") == "loadfile" else None
