"""A run started in the background, as a script or a CI runner starts it (its own process group, SIGINT
ignored), stops on SIGINT to its process group and on SIGTERM with nothing it started left running: `consortium
up` (what `make run` starts).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers.up import kill_leftovers, start, wait_up


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie has stopped: only its parent has yet to read its exit code)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def group_is_empty(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def pids_named_in(directory: Path) -> dict[str, int]:
    return {f.stem: int(f.read_text()) for f in directory.glob("*.pid")}


def signal_the_job(proc: subprocess.Popen[str], signum: int, target: str) -> None:
    """`group`: as a shell's `kill -INT -<pgid>` or a CI runner cancelling the job; `process`: the process alone,
    as GNU make passes its SIGTERM on to what it runs."""
    if target == "group":
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)


@pytest.fixture(scope="module")
def consortium_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for both signals: the second start resumes the first's consortium, much the quicker."""
    return tmp_path_factory.mktemp("background-consortium")


@pytest.mark.parametrize(
    ("signum", "target"),
    [(signal.SIGINT, "group"), (signal.SIGTERM, "process")],
    ids=["SIGINT to its group", "SIGTERM to it"],
)
def test_consortium_up_as_a_background_job_stops_everything_it_started(
    consortium_dir: Path, signum: int, target: str
) -> None:
    proc = start(consortium_dir, as_background_job=True)
    try:
        wait_up(proc)
        started = pids_named_in(consortium_dir)
        assert "anvil" in started and len(started) >= 4, started
        signal_the_job(proc, signum, target)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "restarting" not in out, out  # the supervisor let the stopping nodes go
        left = {name: pid for name, pid in started.items() if running(pid)}
        assert not left, f"still running: {left}\n{out}"
        assert group_is_empty(proc.pid), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_leftovers(consortium_dir)
