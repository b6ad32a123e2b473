"""Fixtures with the real parts: an Anvil process, deployed contracts, node processes over HTTP.

Every test under tests/chain/ carries the `chain` marker: `pytest -m "not chain"` runs the pure ones only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.anvil import LocalChain
from chain.deploy import Deployment, deploy_contracts
from tests.helpers.chains import new_chain
from tests.helpers.inprocess import InProcessNetwork
from tests.helpers.nodes import ADMIN_KEY, TEST_RULEBOOK, NodeFactory, genesis_of

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.chain)


@pytest.fixture(scope="module")
def anvil(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChain]:
    """The module's chain (Anvil unless the module says otherwise; the name stays for the many tests using it)."""
    chain = new_chain(request, tmp_path_factory, "anvil")
    try:  # a run stopped while the chain starts (tests/conftest.py) stops it too
        chain.start()
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def deployment(anvil: LocalChain) -> Deployment:
    return deploy_contracts(anvil.rpc_url, ADMIN_KEY, genesis_of(TEST_RULEBOOK))


@pytest.fixture
def nodes(anvil: LocalChain, deployment: Deployment, tmp_path: Path) -> Iterator[NodeFactory]:
    """As many partner nodes as a test asks for, each a real process registered on the chain; all stopped
    (and removed from the registry) when the test ends."""
    factory = NodeFactory(anvil, deployment, tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def network(anvil: LocalChain, deployment: Deployment, tmp_path: Path) -> Iterator[InProcessNetwork]:
    """Nodes served in-process, reaching each other through a routing transport (tests/helpers/inprocess.py)."""
    net = InProcessNetwork(anvil.rpc_url, deployment, tmp_path)
    yield net
    net.close()
