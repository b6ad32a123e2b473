"""`consortium up` as a person runs it (what `make run` starts), for the tests that need a whole consortium.

Nothing it started outlives a test: a consortium that did not come up is stopped as Ctrl-C stops it, and what
is still running a minute later (its nodes, its Anvil, each named by a `<name>.pid` file in the data
directory) is killed. Killing only the supervisor, as this helper once did, left four nodes and an Anvil
running per failed test, which loaded the machine further and failed the next start too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class Consortium(subprocess.Popen[str]):
    """The `consortium up` process and the data directory it keeps its pid files in."""

    data_dir: Path


def start(data_dir: Path, *, as_background_job: bool = False) -> Consortium:
    """`consortium up` on `data_dir`; `as_background_job`: as a script or CI runner starts it, in a process group
    of its own with SIGINT ignored (what a shell hands a job it starts with `&`)."""
    proc = Consortium(
        [sys.executable, "-m", "node", "up", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore_sigint if as_background_job else None,
        start_new_session=as_background_job,
    )
    proc.data_dir = data_dir
    return proc


def wait_up(proc: Consortium, timeout: float = 240) -> str:
    """The terminal up to the summary's last part ("Try:"); a consortium that never gets there is stopped. The
    deadline only tells a hung start from a slow one: two suites side by side on two cores (a load of 10-30)
    took over 90 s to start Anvil and four nodes; `make run`'s own time is measured, not asserted."""
    try:
        return read_until(proc, "Try:", timeout)
    except AssertionError:
        shut_down(proc)
        raise


def stop(proc: Consortium) -> str:
    """Ctrl-C, and the consortium stops cleanly (exit 0) with everything it started."""
    out = shut_down(proc)
    assert proc.returncode == 0, out
    return out


def shut_down(proc: Consortium) -> str:
    """As Ctrl-C; whatever is still running after a minute is killed, the supervisor and each process it named."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    if proc.returncode != 0:  # it did not stop what it started
        kill_leftovers(proc.data_dir)
    return out or ""


def kill_leftovers(data_dir: Path) -> None:
    """Kill each process a `<name>.pid` file of `data_dir` names if it is still one of ours (a node or an
    Anvil, not a pid since reused)."""
    for pid_file in data_dir.glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"anvil" in command or b"serve" in command:
                os.kill(pid, signal.SIGKILL)


def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    """The terminal's lines up to the first that contains `text` (the consortium prints as it goes)."""
    assert proc.stdout is not None
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if text in line:
            return "".join(out)
    raise AssertionError(f"no line with {text!r}:\n" + "".join(out))


def ignore_sigint() -> None:
    """In a child about to exec: SIGINT ignored, as a non-interactive shell leaves it for a background job."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
