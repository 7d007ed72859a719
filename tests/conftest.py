"""Fixtures every test module may ask for (the throw-away PostgreSQL cluster and the SQLite/PostgreSQL ``db_url``),
and how modules are spread over pytest-xdist workers."""

import os
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
from tests.redis_support import fresh_redis, redis_server  # noqa: F401 - fixtures by name

#: modules that decode speech in real time (calls with the speech service) or in bulk: one unit on one worker, run one
#: after another, so a real-time call's recognizer never shares the 2 cores with another decode-heavy module
SPEECH_CPU = frozenset({
    "test_after_hours_order", "test_asr", "test_asr_models", "test_asr_stream", "test_callback_e2e", "test_case_calls",
    "test_dialogue_calls", "test_message_durability", "test_operator_e2e", "test_roles", "test_speech_call",
    "test_speech_hosts", "test_speech_service", "test_speech_turns"})
SPEECH_UNIT = "speech_cpu"
#: niceness of a worker while the other one may be decoding speech in real time
YIELDING_NICE = 10
#: a test that places real calls (marker ``sip``: SIP, RTP and often whisper in real time on 2 shared cores) is run once
#: more when it fails; its first failure is still printed in full ("rerun test summary info"), and two failures fail
#: the suite. Four CI runs in a row each failed one different such test out of ~990 from timing (README, *Tests*)
REAL_CALL_RERUNS = 1


class _ModuleScheduling(LoadFileScheduling):
    """``--dist loadfile``, with the SPEECH_CPU modules as one unit that the first worker asked takes first; the other
    workers take the other modules (and yield the CPU to it, see ``pytest_runtest_setup``)."""

    speech_node: object | None = None

    def _split_scope(self, nodeid: str) -> str:
        module = super()._split_scope(nodeid)
        return SPEECH_UNIT if Path(module).stem in SPEECH_CPU else module

    def _assign_work_unit(self, node) -> None:  # noqa: ANN001 - xdist's WorkerController
        if SPEECH_UNIT in self.workqueue:
            if self.speech_node is None:
                self.speech_node = node
                self.workqueue.move_to_end(SPEECH_UNIT, last=False)
            elif len(self.workqueue) > 1:
                self.workqueue.move_to_end(SPEECH_UNIT)
        super()._assign_work_unit(node)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    """``./test.sh -n 2 --dist loadfile``: each module whole on one worker (its module fixtures start once).
    (pytest-xdist's own ``loadgroup`` marks do not work with pytest 9: it renames ``item._nodeid``, which pytest 9
    no longer reads.)"""
    return _ModuleScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("sip") is not None and item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=REAL_CALL_RERUNS, reruns_delay=2))


_ran_speech = False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under xdist, a worker that runs other modules before any speech module lowers its priority (and its children's:
    hotline, Kamailio, Chromium) once, so a real-time speech call on the other worker keeps its core. Under the
    scheduler above the speech worker runs its unit first and never lowers its own."""
    global _ran_speech
    speech = Path(str(item.path)).stem in SPEECH_CPU
    _ran_speech = _ran_speech or speech
    under_xdist = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    if under_xdist and not _ran_speech and os.getpriority(os.PRIO_PROCESS, 0) < YIELDING_NICE:
        os.setpriority(os.PRIO_PROCESS, 0, YIELDING_NICE)
