"""`consortium up` as a person runs it (what `make run` starts), for the tests that need a whole consortium."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path


def start(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "node", "up", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_up(proc: subprocess.Popen[str], timeout: float = 240) -> str:
    """The terminal up to the summary's last part ("Try:"); a consortium that never gets there is killed. The
    deadline only tells a hung start from a slow one: two suites side by side on two cores (a load of 10-30)
    took over 90 s to start Anvil and four nodes; `make run`'s own time is measured, not asserted."""
    try:
        return read_until(proc, "Try:", timeout)
    except AssertionError:
        proc.kill()
        raise


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


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
