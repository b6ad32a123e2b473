"""Every exception class the chain package defines, under one root: `except ChainError` catches them all.

Each class keeps the builtin base it had before the root existed, so `except ValueError` or
`except RuntimeError` around chain code still works. The modules that raise them re-export them
under their old import paths (e.g. `from chain.merkle import EmptyTree`).

* ChainError
  + ChainUnavailable        chain.tx: the RPC endpoint does not answer (wait and retry)
  + TransactionRejected     chain.tx: the contract reverted the call
  |                         (chain.anchor_client.AnchorRejected is another name for it)
  + ContractCompileError    chain.contracts             also a RuntimeError
  + AnvilNotInstalled       chain.anvil                 also a RuntimeError
  + GanacheNotInstalled     chain.ganache               also a RuntimeError
  + LocalChainDidNotStart   chain.anvil, chain.ganache  also a RuntimeError
  | + AnvilDidNotStart      chain.anvil
  + EmptyTree               chain.merkle                also a ValueError
  + NotCanonicalizable      chain.canonical             also a ValueError
  + BadDocument             chain.audit                 also a ValueError
  + AuditSourceError        chain.auditor
"""

from __future__ import annotations

__all__ = [
    "AnvilDidNotStart",
    "AnvilNotInstalled",
    "AuditSourceError",
    "BadDocument",
    "ChainError",
    "ChainUnavailable",
    "ContractCompileError",
    "EmptyTree",
    "GanacheNotInstalled",
    "LocalChainDidNotStart",
    "NotCanonicalizable",
    "TransactionRejected",
]


class ChainError(Exception):
    """The root of every exception raised by the chain package."""


class ChainUnavailable(ChainError):
    """The RPC endpoint does not answer: callers wait and retry, nothing is lost."""


class TransactionRejected(ChainError):
    """The contract reverted the call; the message carries its reason."""


class ContractCompileError(ChainError, RuntimeError):
    """The Solidity sources could not be compiled (solc-js missing, or the compiler reported errors)."""


class AnvilNotInstalled(ChainError, RuntimeError):
    """The Anvil binary from npm is not installed."""


class GanacheNotInstalled(ChainError, RuntimeError):
    """The npm `ganache` package is not where chain.tools looks (`npm ci` installs it)."""


class LocalChainDidNotStart(ChainError, RuntimeError):
    """A local chain process exited or never answered on its port."""


class AnvilDidNotStart(LocalChainDidNotStart):
    """Anvil exited or did not answer on its RPC port (or was used before being started)."""


class EmptyTree(ChainError, ValueError):
    """A Merkle tree needs at least one leaf."""


class NotCanonicalizable(ChainError, ValueError):
    """A value that cannot be hashed reproducibly (a float, a non-string key, an unknown type)."""


class BadDocument(ChainError, ValueError):
    """A proof document that does not have the documented shape."""


class AuditSourceError(ChainError):
    """The node or the export file could not be read as documented."""
