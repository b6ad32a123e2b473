"""A run started in the background, as a script or a CI runner starts it (its own process group, SIGINT
ignored), stops on SIGINT to its process group and on SIGTERM with nothing it started left running: `consortium
up` (what `make run` starts) and a pytest going through the suite's fixture teardown, with xdist and without.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from node.launch.nodes import until
from tests.helpers.up import ignore_sigint, kill_leftovers, start, wait_up

ROOT = Path(__file__).resolve().parents[2]
HELD_CHAIN = Path(__file__).with_name("held_chain.py")


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


def pids_held_by(proc: subprocess.Popen[str], directory: Path) -> dict[str, int]:
    """The pids the held test wrote so far; a run that ended before writing them fails at once, with its output."""
    pids = pids_named_in(directory)
    if not pids and proc.poll() is not None:
        raise AssertionError(proc.communicate()[0])
    return pids


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


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
@pytest.mark.parametrize(
    ("signum", "target"),
    [(signal.SIGTERM, "process"), (signal.SIGINT, "group")],
    ids=["SIGTERM to pytest", "SIGINT to its group"],
)
def test_a_background_pytest_tears_its_chain_down_when_stopped(
    tmp_path: Path, workers: list[str], signum: int, target: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(HELD_CHAIN), "-q", "-p", "no:cacheprovider", *workers],
        cwd=ROOT,
        env={**os.environ, "HELD_CHAIN_PIDS": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore_sigint,
        start_new_session=True,
    )
    held: dict[str, int] = {}
    try:
        held = until(partial(pids_held_by, proc, tmp_path), timeout=120)
        signal_the_job(proc, signum, target)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
        left = {name: pid for name, pid in held.items() if running(pid)}
        assert not left, f"still running: {left}\n{out}"
        assert group_is_empty(proc.pid), out  # the workers too
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        for pid in held.values():
            if running(pid):
                os.kill(pid, signal.SIGKILL)
