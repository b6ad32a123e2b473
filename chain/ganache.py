"""Ganache (npm `ganache`) as a child process: the second Ethereum implementation the chain tests run on, so
that nothing the node does depends on one implementation's quirks (docs/chains.md).

It mines each transaction at once ("instamine"), like Anvil's default; Anvil's development keys are funded
at start so that the launcher and the tests fund and deploy the same way on both. Its state lives in memory.
"""

from __future__ import annotations

from chain.anvil import DEFAULT_PRIVATE_KEYS, LocalChain
from chain.tools import find_ganache, find_node

__all__ = ["GanacheProcess"]

DEV_BALANCE_WEI = hex(10_000 * 10**18)


class GanacheProcess(LocalChain):
    name = "Ganache"

    def command(self) -> list[str]:
        args = [
            str(find_node()),
            str(find_ganache()),
            "--server.host",
            "127.0.0.1",
            "--server.port",
            str(self.port),
            "--chain.chainId",
            str(self.chain_id),
            "--logging.quiet",
        ]
        for key in DEFAULT_PRIVATE_KEYS:
            args += ["--wallet.accounts", f"{key},{DEV_BALANCE_WEI}"]
        return args

    def mine(self, blocks: int = 1) -> None:
        self.rpc("evm_mine", [{"blocks": blocks}])
