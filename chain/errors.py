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
  + PeerError               chain.peers: a call to another node (or by the auditor to a node) got no answer it can use
    + PeerUnreachable       no answer: refused connection, timeout, a URL that is no URL
    + PeerAnsweredError     the node answered a status that is not 2xx (status, error code, body, request id kept)
    + PeerAnswerMalformed   a 2xx answer that is not the shape the call expects
  + SiweError               chain.siwe: a Sign-In with Ethereum message refused
    + SiweMalformed         not an EIP-4361 message (names the field)  also a ValueError
    + SiweRejected          well-formed, but signs nobody in here (its `reason`)
"""

from __future__ import annotations

import json

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
    "PeerAnswerMalformed",
    "PeerAnsweredError",
    "PeerError",
    "PeerUnreachable",
    "SiweError",
    "SiweMalformed",
    "SiweRejected",
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


class PeerError(ChainError):
    """A call to another node got no answer the caller can use; `url` is what was asked."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(why)
        self.url = url


class PeerUnreachable(PeerError):
    """No answer: the connection was refused or timed out, or the URL is no URL. `reason` names the cause
    with its type (e.g. `ConnectError: ...`), as the outbox logs it."""

    def __init__(self, url: str, cause: Exception) -> None:
        self.reason = f"{type(cause).__name__}: {cause}"
        super().__init__(url, f"cannot reach {url}: {self.reason}")


class PeerAnsweredError(PeerError):
    """The node answered with a status that is not 2xx. Its JSON error body's `error` code and `message` are
    kept when it has them ("" otherwise), with the raw body and the request id it answered under."""

    def __init__(self, url: str, status: int, body: str, error: str, explanation: str, request_id: str | None) -> None:
        self.status = status
        self.body = body
        self.error = error
        self.explanation = explanation
        self.request_id = request_id
        why = f"{error}: {explanation}" if error and explanation else " ".join(body.split())[:300]
        super().__init__(url, f"{url} answered {status} {why}" + (f" (request {request_id})" if request_id else ""))

    @classmethod
    def of(cls, url: str, status: int, body: str, request_id: str | None) -> PeerAnsweredError:
        """Read the documented error body (`{"error", "message", "detail"}`) where the answer is one."""
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return cls(url, status, body, "", "", request_id)
        return cls(url, status, body, str(answer.get("error", "")), str(answer.get("message", "")), request_id)


class PeerAnswerMalformed(PeerError):
    """A 2xx answer that is not the shape the call expects (not JSON, a field missing or of another type)."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(url, f"{url} answered something that is not what was asked: {why}")


class SiweError(ChainError):
    """A Sign-In with Ethereum message (chain/siwe.py) that signs nobody in."""


class SiweMalformed(SiweError, ValueError):
    """Text that is not an EIP-4361 message; the message names the first field that is wrong."""


class SiweRejected(SiweError):
    """A well-formed message refused; `reason` is a chain.siwe.SiweReason value (bad signature, wrong domain...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
