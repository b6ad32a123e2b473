"""A real Anvil chain as a child process (npm @foundry-rs/anvil-linux-amd64), for `consortium up` and tests;
`LocalChain` is what every local chain process shares (chain/ganache.py is the other).

The binary is found by chain/tools.py (CONSORTIUM_ANVIL_BIN, the project's node_modules, PATH).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from chain.errors import AnvilDidNotStart, AnvilNotInstalled, LocalChainDidNotStart
from chain.processes import free_port, kill, terminate
from chain.tools import find_anvil

__all__ = ["DEFAULT_PRIVATE_KEYS", "AnvilDidNotStart", "AnvilNotInstalled", "AnvilProcess", "LocalChain"]

# Anvil's well-known default accounts (mnemonic "test test ... junk"): local development only.
DEFAULT_PRIVATE_KEYS: list[str] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]


class LocalChain:
    """A local development chain as a child process: start, stop (state saved where the chain can) and kill (a
    crash). Restarts reuse the same port. Subclasses say which program and arguments."""

    name = "chain"

    def __init__(self, port: int | None = None, chain_id: int = 31337) -> None:
        self.port = port
        self.chain_id = chain_id
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise LocalChainDidNotStart(f"{self.name} has not been started")
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def rpc(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call's result; ValueError with the chain's own error if it answers one."""
        answer = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        if "error" in answer:
            raise ValueError(f"{self.name} {method}: {answer['error']}")
        return answer.get("result")

    def mine(self, blocks: int = 1) -> None:
        """Mine `blocks` empty blocks now (a development chain's own method)."""
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        if self.port is None:
            self.port = free_port()
        args = self.command()
        fd, log = tempfile.mkstemp(prefix=f"{self.name.lower()}-", suffix=".log")
        self._log = Path(log)
        self.proc = subprocess.Popen(args, stdout=fd, stderr=subprocess.STDOUT, start_new_session=True)
        os.close(fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._did_not_start(f"{self.name} exited with {self.proc.returncode}: {self._tail()}")
            try:
                r = httpx.post(
                    self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1
                )
                if r.status_code == 200 and int(r.json()["result"], 16) == self.chain_id:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.05)
        self.kill()
        raise self._did_not_start(f"{self.name} did not answer on {self.rpc_url}: {self._tail()}")

    def _did_not_start(self, message: str) -> LocalChainDidNotStart:
        return LocalChainDidNotStart(message)

    def _tail(self) -> str:
        return self._log.read_text(errors="replace")[-2000:] if self._log and self._log.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful: SIGTERM, so a chain that keeps a state file writes it."""
        terminate(self.proc, timeout)
        self._cleanup()

    def kill(self) -> None:
        """An outage or crash: no state dump beyond the last interval."""
        kill(self.proc)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AnvilProcess(LocalChain):
    """A local Anvil (npm @foundry-rs/anvil-linux-amd64), its state optionally kept in a file across restarts."""

    name = "Anvil"

    def __init__(
        self,
        port: int | None = None,
        state_path: Path | None = None,
        chain_id: int = 31337,
        block_time: float | None = None,
        anvil_bin: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(port, chain_id)
        self.anvil_bin = anvil_bin  # None: chain.tools.find_anvil's search
        self.state_path = state_path
        self.block_time = block_time

    def _did_not_start(self, message: str) -> LocalChainDidNotStart:
        return AnvilDidNotStart(message)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def command(self) -> list[str]:
        anvil = find_anvil(self.anvil_bin)
        args = [
            str(anvil),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            # Long runs and load tests: without pruning, Anvil's memory grows without bound
            # (measured-here.md); receipts and logs of old transactions stay queryable.
            "--prune-history",
            # Keep recent states: with none kept, a call racing a new block fails ("block height is 26 but
            # requested was 25"), which the story benchmark hit about one run in five.
            "256",
        ]
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            # --state loads at start and dumps on exit; the interval dump bounds what a kill -9 loses.
            args += ["--state", str(self.state_path), "--state-interval", "1"]
        if self.block_time is not None:
            # Mixed: a block every block_time seconds as a real chain makes them, and at once for each
            # transaction, so nothing waits for the interval.
            args += ["--block-time", str(self.block_time), "--mixed-mining"]
        return args
