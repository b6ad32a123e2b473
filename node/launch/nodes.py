"""What `consortium up` needs to start members on a development chain: a fresh funded key for each, and a wait
on what a process makes visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from eth_account import Account
from web3 import Web3
from web3.types import RPCEndpoint

T = TypeVar("T")

# How a development chain sets a balance: Anvil's method, then Ganache's and Hardhat's names for the same.
SET_BALANCE_METHODS = ("anvil_setBalance", "evm_setAccountBalance", "hardhat_setBalance")


def fund_new_key(rpc_url: str) -> str:
    """A fresh member key with gas money (a development chain's own RPC), so runs never collide on accounts."""
    account = Account.create()
    provider = Web3(Web3.HTTPProvider(rpc_url)).provider
    for method in SET_BALANCE_METHODS:
        answer = provider.make_request(RPCEndpoint(method), [account.address, hex(10**20)])
        if "error" not in answer:
            return "0x" + bytes(account.key).hex()
    raise RuntimeError(f"{rpc_url} sets no balances ({', '.join(SET_BALANCE_METHODS)}): not a development chain")


def until(check: Callable[[], T], timeout: float = 20.0) -> T:
    """Wait for an event a process makes visible (a state its API shows), polling it; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
