"""`hotline serve` started as root drops to a service user (``run_as``; run.sh sets ``hotline``).

Before anything starts: the user must exist, the data folder (``home``) becomes theirs, and a probe child run as
that user must be able to start Python and import the project (a checkout under /root is unreadable to others:
a clear error then, instead of children that die at once). Then the supervisor itself switches (groups, gid,
uid), so the hub, the workers, Kamailio and the speech service all run unprivileged. Not root, or no
``run_as``: nothing changes (the tests run as root and leave it off)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path


class ServiceUserError(RuntimeError):
    pass


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(base, name)
            if not os.path.islink(p):
                os.chown(p, uid, gid)


def _probe(user: str, entry: pwd.struct_passwd, home: Path) -> None:
    """A child as ``user`` starts this Python and imports the project, or ServiceUserError says what to do."""
    try:
        r = subprocess.run([sys.executable, "-c", "import hotline, ivr, agent_console"], user=entry.pw_uid,
                           group=entry.pw_gid, extra_groups=[], capture_output=True, text=True, timeout=60,
                           cwd=str(home))
        problem = "" if r.returncode == 0 else r.stderr.strip()[-300:]
    except OSError as e:
        problem = str(e)
    if problem:
        raise ServiceUserError(
            f"user {user!r} cannot run {sys.executable} with the project ({problem}); put Python and the checkout "
            f"where {user} can read them (e.g. /opt/hotline12368, not under /root) or make their folders "
            f"readable (chmod o+rx)")


def drop_privileges(user: str | None, home: Path, *, probe: bool = True) -> str | None:
    """Switch this process to ``user`` when running as root; returns the user switched to (None: no switch).

    Raises ServiceUserError (with what to do) when the user is missing or (``probe``) cannot run the project."""
    if not user or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ServiceUserError(f"user {user!r} does not exist: useradd --system --no-create-home {user} "
                               f"(run.sh does this), or set run_as to another user") from None
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    _chown_tree(home, entry.pw_uid, entry.pw_gid)
    if probe:
        _probe(user, entry, home)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = user
    return user
