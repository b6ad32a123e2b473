"""One settings object for a node, read from CONSORTIUM_* environment variables (and DATABASE_URL)."""

from __future__ import annotations

import logging
import secrets

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _secret_token() -> str:
    return secrets.token_urlsafe(24)


def _throwaway_key() -> str:
    return "0x" + secrets.token_bytes(32).hex()


# A node's key and operator token are its identity and its lock. Neither has a known default: unset, each is a
# fresh random value nobody knows (fine for a library or a test), and `consortium node serve` refuses to start
# without both given explicitly (SECRETS_REQUIRED).
SECRETS_REQUIRED = ("api_token", "private_key")


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSORTIUM_", extra="ignore")

    node_name: str = "partner"
    database_url: str = Field(
        default="sqlite:///node.db",
        validation_alias=AliasChoices("DATABASE_URL", "CONSORTIUM_DATABASE_URL"),
    )
    # SQLite's synchronous pragma: FULL survives power loss, NORMAL only process crashes (faster).
    sqlite_synchronous: str = "FULL"
    api_token: str = Field(default_factory=_secret_token, min_length=16)
    # When set, /audit/* asks for it (or the operator token); unset, proofs are public to the network.
    audit_token: str | None = None
    private_key: str = Field(default_factory=_throwaway_key)
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    # Requests served at once; beyond it uvicorn answers 503 (each body is bounded too: node/api/limits.py).
    max_concurrent_requests: int = Field(default=256, ge=1)
    # Worker processes serving HTTP on one database; one of them runs the background work (leader.py). More
    # than one pays off on PostgreSQL (README, "Scaling out").
    workers: int = Field(default=1, ge=1, le=64)

    # Sign-in (GET /auth/nonce, POST /auth/siwe, ...): requests per client IP, as a burst and a steady rate.
    auth_burst: int = Field(default=20, ge=1)
    auth_per_second: float = Field(default=1.0, gt=0)

    rpc_url: str = "http://127.0.0.1:8545"
    registry_address: str | None = None
    anchor_address: str | None = None

    # Size trigger: a batch is anchored as soon as this many records wait...
    anchor_batch_size: int = Field(default=500, ge=1)
    # ...time trigger: a record waits at most about this long. A node that formed no batch for this long anchors
    # a new record at once; batches are at most one per interval (and kind) unless full. 0.5 s keeps a transfer's
    # records anchored within a second on Anvil or a private chain (at most 2 transactions a second per kind
    # under load); on a public chain, where each transaction costs gas, raise it (e.g. 60).
    anchor_interval_seconds: float = Field(default=0.5, gt=0)
    # Upper bound on one batch; one transaction anchors it whatever its size.
    anchor_max_leaves: int = Field(default=200_000, ge=1)
    anchor_enabled: bool = True
    # Blocks on top of an anchor before it counts as final; until then the node checks it is still on the chain
    # (a reorg may drop it: it is anchored again). 0 suits Anvil; a public or QBFT chain wants its finality depth.
    anchor_confirmations: int = Field(default=0, ge=0)
    chain_retry_max_seconds: float = Field(default=10.0, gt=0)
    # Membership and the rule book schedule are followed from the chain's events this often, and answered from
    # memory in between (node/services/chain_view.py states the staleness); 0 asks the chain for every message.
    chain_follow_seconds: float = Field(default=0.5, ge=0)

    # Negotiation: what stays this node's own choice. Radius, deadlines, trigger, prices and freight come
    # from the rule book the RuleRegistry says is active.
    consortium_name: str = "consortium-inventory"  # the EIP-712 domain name every member signs under
    safety_stock: int = Field(default=0, ge=0)  # floor under the rule book's safety level, units per SKU
    # Plan by itself this long after an invitation went out, once offers are in (None: the operator plans).
    auto_plan_after_seconds: float | None = Field(default=None, ge=0)

    # Rules: the registry of rule book versions, and a rule book file to hold from startup (a node fetches
    # any other active version from its peers and checks its hash).
    rules_address: str | None = None
    rulebook_file: str | None = None

    # The node's log (stderr, which `consortium up` writes to <data-dir>/<node>/node.log): DEBUG, INFO,
    # WARNING or ERROR. One line per event: time, level, logger, request id, message.
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"unknown log level {value!r}: one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level
