"""The composition root of one node: every long-lived piece is built here once, from the settings, and
handed to those that need it. Nothing else reads the settings or builds a client.

    NodeSettings --> one Web3 --> MemberRegistryClient --> Directory ----+
                          |                                              |
                          +--> RuleKeeper (RuleRegistry)                 +--> Negotiator: Invitations,
                          +--> AnchoringService (AnchorWriter)           |    StepGroups (invitations,
    private key --------> Signer (EIP-712 domain: chain id, registry) ---+    transfers, disputes, loans, ...)
    PeerClient ---------> Outbox (delivery to members' nodes) -----------+    Negotiator (the worker)
    GroupCommit (one writer thread) -----------------------------------------> MessageRouter (the inbox),
                                                                              LedgerWriter
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_account import Account
from sqlalchemy import Engine
from web3 import Web3

from chain.anchor_client import AnchorWriter
from chain.peers import PeerClient
from chain.records import RecordKind
from chain.registry_client import MemberRegistryClient
from chain.rules_client import RuleRegistryClient
from chain.tx import connect
from negotiation.messages import Domain
from node.errors import NotConfigured
from node.services.anchoring import AnchoringService, AnchorPolicy
from node.services.chain_view import ChainView
from node.services.directory import Directory
from node.services.leader import Leadership
from node.services.ledger import LedgerWriter
from node.services.negotiator import NegotiationPolicy, Negotiator
from node.services.outbox import Outbox
from node.services.projection import ProjectionCheck
from node.services.router import MessageRouter, handlers_of
from node.services.rules_keeper import RuleKeeper
from node.services.settlements import Settlements
from node.services.side import Side
from node.services.signer import Signer
from node.services.signin import SignIn
from node.services.steps import StepGroups
from node.settings import NodeSettings
from node.store.engine import make_engine
from node.store.group_commit import GroupCommit
from node.store.records import on_records_committed

# Record kinds this node anchors: its ledger, and the final settlement statements it signed.
ANCHORED_KINDS = (RecordKind.LEDGER, RecordKind.SETTLEMENT)


@dataclass(frozen=True)
class Negotiation:
    """What a node that knows the member registry negotiates with: built together, so present together."""

    steps: StepGroups
    negotiator: Negotiator  # the worker: trigger, plan, deliver
    router: MessageRouter  # the inbox


class NodeServices:
    def __init__(
        self, settings: NodeSettings, engine: Engine | None = None, peer_client: httpx.Client | None = None
    ) -> None:
        """`peer_client`: how this node reaches other nodes (default: real HTTP); tests may route it in-process.
        It is wrapped once in the node's PeerClient (chain/peers.py), which every call to another node uses."""
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url, settings.sqlite_synchronous)
        self.address: str = Account.from_key(settings.private_key).address
        self.web3: Web3 = connect(settings.rpc_url)
        self.peers = PeerClient(peer_client, token=settings.audit_token)
        registry = MemberRegistryClient(self.web3, settings.registry_address) if settings.registry_address else None
        rules = RuleRegistryClient(self.web3, settings.rules_address) if settings.rules_address else None
        self.chain_view = (
            ChainView(self.web3, registry, rules, settings.chain_follow_seconds)
            if registry is not None and settings.chain_follow_seconds > 0
            else None
        )
        self.directory = Directory(registry, self.address, self.chain_view) if registry else None
        self.rules = RuleKeeper(
            self.engine,
            self.web3,
            settings.rules_address,
            registry,
            settings.private_key,
            lambda: settings.public_url or f"http://{settings.host}:{settings.port}",
            self.peers,
        )
        self.rules.view = self.chain_view
        if settings.rulebook_file:
            self.rules.add_file(Path(settings.rulebook_file))
        self.writer = GroupCommit(self.engine)
        self.negotiation = self._negotiation(self.directory) if self.directory is not None else None
        self.anchoring = self._anchoring()
        if self.anchoring is not None:
            on_records_committed(self.engine, self.anchoring.written)
        steps = self.negotiation.steps if self.negotiation is not None else None
        self.ledger = LedgerWriter(self.writer, self.address, steps)
        self.projection = ProjectionCheck(self.engine)
        self.signin = SignIn(self.engine, self.directory, self.address, lambda: int(self.web3.eth.chain_id))
        self.leadership: Leadership | None = None

    def negotiating(self) -> Negotiation:
        """The node's negotiation, or NotConfigured (503) on a node without the member registry."""
        if self.negotiation is None:
            raise NotConfigured("negotiation needs the member registry (CONSORTIUM_REGISTRY_ADDRESS)")
        return self.negotiation

    def _negotiation(self, directory: Directory) -> Negotiation:
        """The step groups, the worker and the inbox of a node that knows the member registry."""
        settings = self.settings
        assert settings.registry_address is not None
        registry_address = settings.registry_address
        signer = Signer(
            settings.private_key,
            lambda: Domain(settings.consortium_name, int(self.web3.eth.chain_id), registry_address),
        )
        outbox = Outbox(self.engine, self.address, lambda a: directory.member(a).node_url, self.peers)
        policy = NegotiationPolicy(settings.safety_stock, settings.auto_plan_after_seconds)
        side = Side(self.engine, signer, directory, outbox, self.rules)
        steps = StepGroups.build(
            side,
            policy.safety_floor,
            lambda disputes: Settlements(side, disputes, self.web3, settings.anchor_address, self.peers),
        )
        negotiator = Negotiator(side, policy, steps)
        authority = steps.disputes.ruling_authority
        router = MessageRouter(side, handlers_of(steps.all()), self.writer, authority, negotiator.admitted)
        return Negotiation(steps, negotiator, router)

    def _anchoring(self) -> AnchoringService | None:
        settings = self.settings
        if not (settings.anchor_enabled and settings.anchor_address):
            return None
        anchor_address = settings.anchor_address
        return AnchoringService(
            self.engine,
            lambda: AnchorWriter(self.web3, anchor_address, settings.private_key),
            AnchorPolicy(settings.anchor_batch_size, settings.anchor_interval_seconds, settings.anchor_max_leaves),
            kinds=ANCHORED_KINDS,
            retry_max_seconds=settings.chain_retry_max_seconds,
            confirmations=settings.anchor_confirmations,
        )

    def start(self) -> None:
        """The chain view in every worker process; the background work (anchoring, the negotiation outbox and
        trigger, the projection check) in the one elected among a node's workers (node/services/leader.py)."""
        if self.chain_view is not None:
            self.chain_view.start()
        if self.settings.workers > 1:
            self.leadership = Leadership(self.engine, self._start_background_work)
            self.leadership.start()
        else:
            self._start_background_work()

    def _start_background_work(self) -> None:
        self.projection.start()
        if self.anchoring is not None:
            self.anchoring.start()
        if self.negotiation is not None:
            self.negotiation.negotiator.start()

    def stop(self) -> None:
        if self.negotiation is not None:
            self.negotiation.negotiator.stop()
        self.writer.stop()
        if self.chain_view is not None:
            self.chain_view.stop()
        if self.anchoring is not None:
            self.anchoring.stop()
        if self.leadership is not None:  # given up only once this worker's background work has stopped
            self.leadership.stop()
        self.peers.close()
        self.engine.dispose()
