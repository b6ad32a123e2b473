"""chain/errors.py: one root for every chain exception, old import paths and builtin bases kept; web3_of."""

from __future__ import annotations

import pytest
from web3 import Web3

from chain import errors
from chain.anchor_client import AnchorRejected
from chain.anchor_client import ChainUnavailable as AnchorChainUnavailable
from chain.anvil import AnvilDidNotStart, AnvilNotInstalled
from chain.audit import BadDocument
from chain.auditor import AuditSourceError
from chain.canonical import NotCanonicalizable, canonical_json
from chain.contracts import ContractCompileError
from chain.errors import ChainError
from chain.merkle import EmptyTree, MerkleTree
from chain.tx import ChainUnavailable, TransactionRejected, connect, web3_of

OLD_PATHS: list[type[Exception]] = [
    ChainUnavailable,
    TransactionRejected,
    AnchorRejected,
    AnchorChainUnavailable,
    ContractCompileError,
    AnvilNotInstalled,
    AnvilDidNotStart,
    EmptyTree,
    NotCanonicalizable,
    BadDocument,
    AuditSourceError,
]


@pytest.mark.parametrize("exc", OLD_PATHS, ids=lambda e: e.__name__)
def test_every_chain_exception_is_a_chain_error(exc: type[Exception]) -> None:
    assert issubclass(exc, ChainError)


def test_old_import_paths_are_the_same_classes() -> None:
    assert AnchorRejected is TransactionRejected is errors.TransactionRejected
    assert AnchorChainUnavailable is ChainUnavailable is errors.ChainUnavailable
    assert EmptyTree is errors.EmptyTree and BadDocument is errors.BadDocument


def test_errors_module_exports_only_chain_errors() -> None:
    exported = [getattr(errors, name) for name in errors.__all__]
    assert all(issubclass(e, ChainError) for e in exported)
    assert set(exported) >= set(OLD_PATHS)


@pytest.mark.parametrize(
    ("exc", "builtin"),
    [
        (ContractCompileError, RuntimeError),
        (AnvilNotInstalled, RuntimeError),
        (AnvilDidNotStart, RuntimeError),
        (EmptyTree, ValueError),
        (NotCanonicalizable, ValueError),
        (BadDocument, ValueError),
    ],
    ids=lambda e: e.__name__,
)
def test_builtin_bases_are_kept(exc: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(exc, builtin)


def test_raised_errors_are_caught_by_either_base() -> None:
    with pytest.raises(ValueError):
        MerkleTree([])
    with pytest.raises(ChainError):
        MerkleTree([])
    with pytest.raises(ChainError):
        canonical_json({"price": 1.5})


def test_web3_of_keeps_a_given_web3() -> None:
    w3 = connect("http://127.0.0.1:8545")
    assert web3_of(w3) is w3


def test_web3_of_connects_a_url() -> None:
    url = "http://127.0.0.1:18545"
    w3 = web3_of(url)
    assert isinstance(w3, Web3)
    assert getattr(w3.provider, "endpoint_uri", None) == url
    assert web3_of(url) is not w3


ADDRESS = "0x" + "11" * 20


def test_clients_share_a_given_web3_or_connect_a_url() -> None:
    """No RPC call is made: building a client only reads the compiled ABIs."""
    from chain.anchor_client import AnchorReader, AnchorWriter
    from chain.registry_client import MemberRegistryClient
    from chain.rules_client import RuleRegistryClient

    w3 = connect("http://127.0.0.1:8545")
    assert AnchorReader(w3, ADDRESS).w3 is w3
    assert AnchorWriter(w3, ADDRESS, "0x" + "22" * 32).w3 is w3
    assert MemberRegistryClient(w3, ADDRESS).w3 is w3
    assert RuleRegistryClient(w3, ADDRESS).w3 is w3
    by_url = RuleRegistryClient("http://127.0.0.1:18545", ADDRESS).w3
    assert by_url is not w3 and getattr(by_url.provider, "endpoint_uri", None) == "http://127.0.0.1:18545"
