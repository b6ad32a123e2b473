"""What every protocol step of a node shares: its database, its key, the member directory, its outbox and its
rule books, built once by the composition root (node/services/container.py) and handed over whole."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from node.services.directory import Directory
from node.services.outbox import Outbox
from node.services.rules_keeper import RuleKeeper
from node.services.signer import Signer


@dataclass(frozen=True)
class Side:
    engine: Engine
    signer: Signer
    directory: Directory
    outbox: Outbox
    rules: RuleKeeper

    @property
    def me(self) -> str:
        return self.signer.address


class Steps:
    """Base of the step groups (node/services/steps.py) and of the negotiation worker: what each reads of the Side."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.engine = side.engine
        self.signer = side.signer
        self.me = side.me
        self.directory = side.directory
        self.outbox = side.outbox
        self.rules = side.rules
