"""Sending a contract call as a locally signed transaction (no keys in the node's RPC endpoint)."""

from __future__ import annotations

import threading
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import RPCEndpoint, TxReceipt

from chain.errors import ChainUnavailable, TransactionRejected

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
    TimeExhausted,
)


def connect(rpc_url: str, timeout: float = 10.0) -> Web3:
    """A web3 client that asks the chain id once: web3's validation would otherwise ask on every call,
    which was half of the round trips of a one-record anchor."""
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


def web3_of(rpc: str | Web3, timeout: float = 10.0) -> Web3:
    """`rpc` itself when it is already a Web3 (one client shared by a node's chain clients; `timeout` is then
    that client's business), else a new client connected to the URL."""
    return rpc if isinstance(rpc, Web3) else connect(rpc, timeout)


# One lock per sending address in this process: a node's threads (anchoring, an operator's approval, the
# governance steps) send from one key, and two that read the same pending nonce had one refused "nonce too low".
_sending: dict[str, threading.Lock] = {}
_sending_guard = threading.Lock()
NONCE_RETRIES = 3  # another process with the same key (a node's other worker) may still take a nonce first


def _lock_of(address: str) -> threading.Lock:
    with _sending_guard:
        return _sending.setdefault(address, threading.Lock())


def send(w3: Web3, account: LocalAccount, fn: Any, timeout: float = 30.0) -> TxReceipt:
    """Build, sign, send `fn` (a bound contract function) and wait for its receipt."""
    try:
        for attempt in range(NONCE_RETRIES + 1):
            with _lock_of(account.address):
                tx = fn.build_transaction(
                    {
                        "from": account.address,
                        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                        "chainId": w3.eth.chain_id,
                    }
                )
                signed = account.sign_transaction(tx)
                try:
                    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
                    break
                except Web3RPCError as exc:
                    if "nonce too low" not in str(exc) or attempt == NONCE_RETRIES:
                        raise
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.01)
    except ContractLogicError as exc:
        raise TransactionRejected(str(exc)) from exc
    except CONNECTION_ERRORS as exc:
        raise ChainUnavailable(str(exc)) from exc
    if receipt["status"] != 1:
        raise TransactionRejected(f"transaction {tx_hash.hex()} reverted")
    return receipt
