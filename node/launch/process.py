"""A node as a real child process (used by `consortium up` and by the integration tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chain.processes import free_port, kill, terminate
from node.errors import NodeDidNotStart

__all__ = ["NodeDidNotStart", "NodeProcess", "free_port"]


@dataclass
class NodeProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it to answer (several nodes start side by side)."""
        env = {**os.environ, **self.env, "CONSORTIUM_PORT": str(self.port), "CONSORTIUM_HOST": "127.0.0.1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node", "node", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the node answers /health; NodeDidNotStart (with its log's end) if it exits or stays silent."""
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NodeDidNotStart(f"node {self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise NodeDidNotStart(f"node {self.name} did not answer on {self.url}: {self.log_path.read_text()[-2000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        terminate(self.proc, timeout)

    def kill(self) -> None:
        """A crash: no shutdown hooks run."""
        kill(self.proc)
