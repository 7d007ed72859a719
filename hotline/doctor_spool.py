"""`hotline doctor`'s spool check: events the hub refused (dead letters) and events not yet delivered.

Kept apart from hotline/doctor.py (a plain function of the spool directory); doctor adds its result as a Check."""

from __future__ import annotations

from pathlib import Path

from ivr.publisher import dead_letter_count


def spool_check(spool_dir: Path) -> tuple[str, str, str, str]:
    """(name, status, detail, fix) for `hotline doctor`: warn while any dead-letter file holds events."""
    if not spool_dir.exists():
        return "spool", "info", f"{spool_dir}: no spool yet", ""
    dead = dead_letter_count(spool_dir)
    if not dead:
        return "spool", "ok", f"{spool_dir}: no events refused by the hub", ""
    total = sum(dead.values())
    per = ", ".join(f"{w}: {n}" for w, n in dead.items())
    return ("spool", "warn", f"{total} event(s) the hub refused are in dead-letter files ({per})",
            f"read {spool_dir}/<worker>.dead.jsonl (status and reason per event); fix the cause, then move the file "
            "away")
