"""The suite stops on SIGINT and on SIGTERM with its fixtures torn down (their Anvils, nodes and consortiums
stopped), however it was started.

pytest turns only SIGINT into KeyboardInterrupt, and only when it was not inherited ignored: a `make test`
started in the background by a script or a CI runner ignores SIGINT, and SIGTERM kills pytest outright. Either
way no fixture teardown ran, and the processes the fixtures started outlived the run. Here both signals raise
KeyboardInterrupt, after which pytest tears every set-up fixture down and exits 2.

With xdist the controller hands SIGTERM on to its workers, which run the fixtures: a signal to the controller
alone (GNU make passes its SIGTERM to its child, pytest) would otherwise leave them to execnet, which kills a
worker still busy ten seconds later. A signal to the process group reaches every worker directly as well, so
after the first one each process ignores the rest: a second signal must not abandon a teardown half done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from functools import partial
from types import FrameType

import pytest

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return
    previous = {signum: signal.signal(signum, partial(_stop_the_run, config)) for signum in STOP_SIGNALS}
    config.add_cleanup(partial(_restore, previous))


def _stop_the_run(config: pytest.Config, signum: int, frame: FrameType | None) -> None:
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    for worker in _xdist_workers(config):
        with contextlib.suppress(ProcessLookupError):  # a worker already done
            os.kill(worker, signal.SIGTERM)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _xdist_workers(config: pytest.Config) -> list[int]:
    """The pids of this controller's xdist workers (none in a worker or a run without xdist)."""
    session = config.pluginmanager.getplugin("dsession")
    group = getattr(getattr(session, "nodemanager", None), "group", None)
    popens = (getattr(gateway._io, "popen", None) for gateway in group or [])
    return [popen.pid for popen in popens if popen is not None]


def _restore(previous: dict[signal.Signals, signal._HANDLER]) -> None:
    if threading.current_thread() is threading.main_thread():
        for signum, handler in previous.items():
            signal.signal(signum, handler)
