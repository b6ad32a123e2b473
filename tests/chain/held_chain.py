"""A test that holds the suite's chain fixture (tests/chain/conftest.py) until its run is stopped.

Named so the suite never collects it: tests/chain/test_stopping.py runs it alone, in a pytest of its own
started as a background job, and stops that pytest with a signal.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from chain.anvil import LocalChain


def test_holds_the_chain_until_the_run_is_stopped(anvil: LocalChain) -> None:
    assert anvil.proc is not None
    # The pid tells the test driving this run which process must be gone once it ends; one file per worker.
    Path(os.environ["HELD_CHAIN_PIDS"], f"anvil-of-{os.getpid()}.pid").write_text(f"{anvil.proc.pid}\n")
    signal.pause()  # until SIGINT or SIGTERM, which tests/conftest.py turns into KeyboardInterrupt
