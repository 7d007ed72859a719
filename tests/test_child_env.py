"""What `hotline serve` hands its children: unbuffered output and a cap on glibc's malloc arenas (hotline/supervisor.py:
without it the speech service stepped up 64 MB at once in the 1-hour soak), which a site can still set itself."""

from __future__ import annotations

from hotline.supervisor import child_env


def test_children_get_two_malloc_arenas_and_unbuffered_output():
    env = child_env({"PATH": "/usr/bin", "HOTLINE_HOME": "/srv/hotline"})
    assert env["MALLOC_ARENA_MAX"] == "2"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"] == "/usr/bin" and env["HOTLINE_HOME"] == "/srv/hotline"


def test_a_site_that_sets_the_arenas_keeps_its_value():
    assert child_env({"MALLOC_ARENA_MAX": "8"})["MALLOC_ARENA_MAX"] == "8"
