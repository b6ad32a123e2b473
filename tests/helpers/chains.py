"""Which chain a test module runs on: Anvil, or the second implementation a module names."""

from __future__ import annotations

import pytest

from chain.anvil import AnvilProcess, LocalChain


def new_chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, label: str) -> LocalChain:
    """The chain a test module runs on, not yet started: Anvil with a state file, unless the module names
    another implementation (`CHAIN = GanacheProcess`, tests/chain/test_second_chain.py)."""
    chain_class = getattr(request.module, "CHAIN", AnvilProcess)
    if chain_class is AnvilProcess:
        return AnvilProcess(state_path=tmp_path_factory.mktemp(label) / "state.json")
    chain: LocalChain = chain_class()
    return chain
