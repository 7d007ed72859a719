"""Issue 15, item 6: `hotline serve` started as root runs as a service user (``run_as``; run.sh: hotline).

Run in child processes (a process cannot become root again): as root with ``run_as = nobody`` the process ends up
as nobody, with the data folder theirs and files it writes owned by nobody; a missing user is refused with the
command that creates it; without ``run_as`` nothing changes."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hotline.service_user import ServiceUserError, drop_privileges

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the drop is from root)")
ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys
from pathlib import Path
from hotline.service_user import drop_privileges
home = Path(sys.argv[2])
user = drop_privileges(sys.argv[1] or None, home, probe=sys.argv[3] == "probe")
(home / "written.txt").write_text("x")
print(json.dumps({"user": user, "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid()}))
"""


def run_child(user: str, home: Path, probe: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, user, str(home), "probe" if probe else "-"],
                          capture_output=True, text=True,
                          timeout=90, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_root_drops_to_the_service_user_and_owns_its_data():
    top = Path(tempfile.mkdtemp(prefix="hotline-run-as-"))  # pytest's tmp_path is under a folder only root may enter
    os.chmod(top, 0o755)
    home = top / "home"
    (home / "spool").mkdir(parents=True)
    (home / "spool" / "w0.jsonl").write_text("")
    r = run_child("nobody", home)  # the child has loaded Python already: no probe needed to test the switch
    nobody = pwd.getpwnam("nobody")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {"user": "nobody", "uid": nobody.pw_uid, "euid": nobody.pw_uid, "gid": nobody.pw_gid}
    for p in (home, home / "spool" / "w0.jsonl", home / "written.txt"):
        assert p.stat().st_uid == nobody.pw_uid, p
    shutil.rmtree(top)


def _others_can_run(exe: Path) -> bool:
    """Every folder above ``exe`` is searchable and ``exe`` executable by users other than its owner."""
    return all(d.stat().st_mode & 0o001 for d in exe.parents) and bool(exe.stat().st_mode & 0o001)


def test_a_python_the_user_cannot_run_is_refused_before_the_switch(tmp_path):
    if _others_can_run(Path(sys.executable).resolve()):
        pytest.skip("this Python is runnable by other users; the refusal needs one they cannot reach")
    r = run_child("nobody", tmp_path / "home", probe=True)
    assert r.returncode != 0 and "ServiceUserError" in r.stderr and "not under /root" in r.stderr, r.stderr


def test_no_run_as_or_a_missing_user(tmp_path):
    r = run_child("", tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["uid"] == 0, r.stderr
    with pytest.raises(ServiceUserError, match="useradd --system"):
        drop_privileges("no-such-hotline-user", tmp_path)
    assert os.geteuid() == 0  # refused before any switch


def test_run_sh_runs_as_hotline_when_started_as_root():
    text = (ROOT / "run.sh").read_text()
    assert 'HOTLINE_RUN_AS="${HOTLINE_RUN_AS-hotline}"' in text and "useradd --system" in text
