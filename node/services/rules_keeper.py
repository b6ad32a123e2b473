"""The node's rule books, at the edge: stored by version, fetched from peers when the chain activates one
this node lacks, and checked against the RuleRegistry before every decision (docs/rules.md).

A node never decides under a rule book it cannot show is the active one: no registry, no chain, no copy
of the active version, or a copy whose governance differs from what the chain holds all refuse the
decision with a specific error, and nothing is invited, offered or planned.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import Engine
from sqlmodel import col, select
from web3 import Web3

from chain.canonical import canonical_json
from chain.deploy import GovernanceTerms
from chain.errors import ChainUnavailable, TransactionRejected
from chain.peers import PeerClient, PeerError
from chain.registry_client import MemberRegistryClient
from chain.rules_client import NO_VERSION, RuleRegistryClient
from chain.tx import CONNECTION_ERRORS
from negotiation.rules.book import CheckedBook, RuleBookInvalid, book_json, check_book, parse_book, read_document
from negotiation.rules.conflicts import Conflict, find_conflicts
from negotiation.rules.engine import Policy, RequestFacts, SkuFacts, StockFacts, Suggestion
from node.domain.ledger import StockStatus
from node.domain.times import utc_now_iso
from node.errors import ChainUnreachable, NotFound, RuleBookNotActive, RuleBookRejected
from node.services.chain_view import ChainView
from node.store.demand import daily_demand, location_demand
from node.store.engine import session_scope
from node.store.tables import Invitation, RuleBookVersion, Sku, StockBalance

log = logging.getLogger(__name__)

FETCH_RETRY_SECONDS = 10.0


def governance_terms(book: CheckedBook) -> GovernanceTerms:
    g = book.book.governance
    return GovernanceTerms(tuple(g.approvers), g.quorum, tuple(g.required), g.activation_delay_blocks).normalised()


@dataclass(frozen=True)
class ActivePolicy:
    policy: Policy
    block: int  # the block at which the chain said this version is active (the last one read)
    since_block: int  # the block this version came into force at


class HeldBook(TypedDict):
    version: str
    label: str
    added_at: str


class Proposed(TypedDict):
    version: str
    proposed_at_block: int


class Approved(TypedDict):
    version: str
    approved_at_block: int
    activates_at_block: int | None  # None while its quorum is not reached


class RuleVersionShown(TypedDict):
    """A rule book version as the registry holds it, and whether this node holds a copy that hashes to it."""

    block: int  # the block the registry was read at
    version: str
    label: str | None
    parent: str
    proposer: str
    proposed_at_block: int
    approvals: list[str]
    activates_at_block: int | None
    active: bool
    held: bool
    governance_matches: bool
    uri: str


class ConflictShown(TypedDict):
    kind: str
    paths: list[str]
    message: str
    situation: dict[str, str]  # names read by the rules, and a value of each that sets the conflict off


class LocationSafety(TypedDict):
    location: str
    available: int
    safety_level: int


class SkuDecision(TypedDict):
    """What the active rule book computes for one SKU at this node now."""

    sku: str
    available: int
    safety_level: int
    set_by_rule: str | None
    safety: Mapping[str, object]  # the safety level's evidence (negotiation/rules/safety_stock.py)
    suggestions: list[str]
    locations: list[LocationSafety]  # each location's own level, from the issues made there
    actions: list[Suggestion]  # the same suggestions, for the node's own actions (not shown by the API)


class Decisions(TypedDict):
    rule_version: str
    block: int  # the block the chain was read at
    in_force_since_block: int  # the block the rule book in force came into force at
    skus: list[SkuDecision]


class RuleKeeper:
    def __init__(
        self,
        engine: Engine,
        rpc: str | Web3,
        rules_address: str | None,
        directory: MemberRegistryClient | None,
        private_key: str,
        public_url: Callable[[], str],
        peers: PeerClient | None = None,
    ) -> None:
        """`rpc`: the node's one Web3 (or a URL); `peers`: how books are fetched from other members."""
        self.engine = engine
        self.rpc = rpc
        self.peers = peers or PeerClient()
        self.rules_address = rules_address
        self.directory = directory
        self.private_key = private_key
        self.public_url = public_url
        self._policies: dict[str, Policy] = {}
        # version -> the block it came into force at, for a version whose on-chain governance matches its book:
        # both fixed once the version is scheduled, so read once.
        self._in_force_since: dict[str, int] = {}
        self._reader: RuleRegistryClient | None = None
        self._fetch_failed: dict[str, float] = {}  # version -> monotonic time before which not to ask again
        self._lock = threading.Lock()
        # Set by the node's services: the version in force followed from the chain's events (chain_view.py).
        self.view: ChainView | None = None
        self._load_held()

    def _load_held(self) -> None:
        """Every rule book held, compiled once at start: a decision never reads the store (it may run inside a
        write transaction), it looks the version up here."""
        with session_scope(self.engine) as s:
            rows = [(r.version, r.body) for r in s.exec(select(RuleBookVersion)).all()]
        for version, body in rows:
            checked = check_book(parse_book(json.loads(body)))
            if checked.version != version:  # the stored copy was altered: never run it
                log.error("stored rule book %s hashes to %s; ignored", version, checked.version)
                continue
            self._policies[version] = Policy(checked)

    # -- the store -----------------------------------------------------------------------------------
    def add(self, data: Any) -> tuple[CheckedBook, list[Conflict]]:
        """Validate and keep a rule book (drafts with conflicts are kept too: they can be tried, not proposed)."""
        try:
            checked = check_book(parse_book(data))
        except RuleBookInvalid as e:
            raise RuleBookRejected(
                "the rule book is not valid", problems=[{"path": p.path, "message": p.message} for p in e.problems]
            ) from None
        self._store(checked)
        return checked, find_conflicts(checked)

    def add_file(self, path: Path) -> CheckedBook:
        return self.add(read_document(path))[0]

    def _store(self, checked: CheckedBook) -> None:
        with session_scope(self.engine) as s:
            if s.get(RuleBookVersion, checked.version) is None:
                body = canonical_json(book_json(checked.book)).decode()
                s.add(
                    RuleBookVersion(
                        version=checked.version, label=checked.book.label, body=body, added_at=utc_now_iso()
                    )
                )
        with self._lock:
            self._policies.setdefault(checked.version, Policy(checked))

    def book(self, version: str) -> CheckedBook | None:
        policy = self.policy_of(version)
        return None if policy is None else policy.checked

    def policy_of(self, version: str) -> Policy | None:
        with self._lock:
            return self._policies.get(version)

    def body(self, version: str) -> str:
        with session_scope(self.engine) as s:
            row = s.get(RuleBookVersion, version)
            if row is None:
                raise NotFound(f"this node holds no rule book {version}", version=version)
            return row.body

    def held(self) -> list[HeldBook]:
        with session_scope(self.engine) as s:
            rows = s.exec(select(RuleBookVersion).order_by(RuleBookVersion.added_at)).all()
            return [{"version": r.version, "label": r.label, "added_at": r.added_at} for r in rows]

    # -- the chain -----------------------------------------------------------------------------------
    def _registry(self, with_key: bool = False) -> RuleRegistryClient:
        if not self.rules_address:
            raise RuleBookNotActive("this node has no rule registry configured, so it cannot know the active rule book")
        if with_key:
            return RuleRegistryClient(self.rpc, self.rules_address, self.private_key)
        # One read-only client for the node's life: building one parses the ABI, which cost more than the call.
        if self._reader is None:
            self._reader = RuleRegistryClient(self.rpc, self.rules_address)
        return self._reader

    def active(self) -> ActivePolicy:
        """The policy of the version the chain says is active now; refuses if this node cannot run it."""
        try:
            registry = self._registry()
            followed = self.view.active() if self.view is not None else None
            version, block = followed or registry.active()
            if version == NO_VERSION:
                raise RuleBookNotActive("the rule registry has no active version")
            policy = self.policy_of(version) or self._fetch(version)
            if policy is None:
                raise RuleBookNotActive(
                    f"rule book {version} is active on-chain and this node holds no copy of it", version=version
                )
            since = self._in_force_since.get(version)
            if since is None:
                on_chain = registry.version(version)
                if on_chain.governance.normalised() != governance_terms(policy.checked):
                    raise RuleBookNotActive(
                        f"the chain's governance for {version} differs from the rule book's", version=version
                    )
                assert on_chain.activates_at_block is not None  # the version in force was scheduled
                since = self._in_force_since[version] = on_chain.activates_at_block
        except CONNECTION_ERRORS as exc:
            raise ChainUnreachable(f"cannot confirm the active rule book: {exc}") from exc
        return ActivePolicy(policy, block, since)

    def _fetch(self, version: str) -> Policy | None:
        """Ask the other members for the version's body; keep it only if it hashes to the version. A version
        nobody could give is not asked for again for a while, so refusing decisions stays quick."""
        if self.directory is None:
            return None
        if time.monotonic() < self._fetch_failed.get(version, 0.0):
            return None
        found = self._fetch_from_members(version)
        if found is None:
            self._fetch_failed[version] = time.monotonic() + FETCH_RETRY_SECONDS
        return found

    def _fetch_from_members(self, version: str) -> Policy | None:
        assert self.directory is not None
        for member in self.directory.members():
            if not member.active or not member.node_url:
                continue
            try:
                checked = check_book(parse_book(self.peers.rule_book(member.node_url, version)))
            except (PeerError, ValueError, RuleBookInvalid):
                continue
            if checked.version == version:
                self._store(checked)
                return self.policy_of(version)
        return None

    def propose(self, version: str) -> Proposed:
        checked = self._proposable(version)
        registry = self._registry(with_key=True)
        try:
            block = registry.propose(
                version, registry.latest(), governance_terms(checked), f"{self.public_url()}/rules/books/{version}"
            )
        except TransactionRejected as e:
            raise RuleBookRejected(f"the registry refused the proposal: {e}", version=version) from None
        except ChainUnavailable as e:
            raise ChainUnreachable(str(e)) from None
        return {"version": version, "proposed_at_block": block}

    def approve(self, version: str) -> Approved:
        checked = self._proposable(version)
        registry = self._registry(with_key=True)
        try:
            on_chain = registry.version(version)
            if on_chain.governance.normalised() != governance_terms(checked):
                raise RuleBookRejected("the proposal's on-chain governance differs from its rule book", version=version)
            block = registry.approve(version)
            scheduled = registry.version(version).activates_at_block
        except TransactionRejected as e:
            raise RuleBookRejected(f"the registry refused the approval: {e}", version=version) from None
        except ChainUnavailable as e:
            raise ChainUnreachable(str(e)) from None
        return {"version": version, "approved_at_block": block, "activates_at_block": scheduled}

    def _proposable(self, version: str) -> CheckedBook:
        policy = self.policy_of(version) or self._fetch(version)
        if policy is None:
            raise NotFound(f"this node holds no rule book {version}", version=version)
        checked = policy.checked
        conflicts = find_conflicts(checked)
        if conflicts:
            raise RuleBookRejected(
                "a rule book with conflicts cannot be proposed or approved",
                conflicts=[conflict_json(c) for c in conflicts],
            )
        return checked

    def history(self) -> list[RuleVersionShown]:
        """Every version on-chain, oldest first, with whether this node holds a copy that hashes to it."""
        registry = self._registry()
        active, block = registry.active()
        out: list[RuleVersionShown] = []
        for v in registry.versions():
            held = self.book(v.version)
            out.append(
                {
                    "block": block,
                    "version": v.version,
                    "label": held.book.label if held else None,
                    "parent": v.parent,
                    "proposer": v.proposer,
                    "proposed_at_block": v.proposed_at_block,
                    "approvals": list(v.approvals),
                    "activates_at_block": v.activates_at_block,
                    "active": v.version == active,
                    "held": held is not None,
                    "governance_matches": held is not None and governance_terms(held) == v.governance.normalised(),
                    "uri": v.uri,
                }
            )
        return out


def conflict_json(c: Conflict) -> ConflictShown:
    return {"kind": c.kind, "paths": list(c.paths), "message": c.message, "situation": dict(c.situation)}


def request_facts(inv: Invitation) -> RequestFacts:
    """An invitation (ours or received) as the rule engine reads a request."""
    return RequestFacts(
        inv.quantity,
        inv.min_shelf_life_days,
        customer_tier=inv.customer_tier,
        scenario=inv.scenario,
        urgent=inv.urgent,
    )


def sku_facts(sku: Sku) -> SkuFacts:
    """A SKU of this node's master data as the rule engine reads it (`sku.*`)."""
    return SkuFacts(sku.code, sku.transfer_price, sku.purchase_price, sale_price=sku.sale_price)


def decisions_now(rules: RuleKeeper, safety_floor: int, by_location: bool = True) -> Decisions:
    """What the active rule book computes for this node today: each SKU's safety level (with the demand behind
    it) and the business rules that fire, as action suggestions. Reads in one transaction, then decides."""
    a = rules.active()
    policy = a.policy
    today = datetime.now(UTC).date()
    calendar = policy.calendar(today)
    with session_scope(rules.engine) as s:
        skus = [(k.code, sku_facts(k)) for k in s.exec(select(Sku).order_by(col(Sku.code))).all()]
        available: dict[str, int] = defaultdict(int)
        on_hand: dict[str, int] = defaultdict(int)
        placed: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (sku, location) -> [avail, on hand]
        for b in s.exec(select(StockBalance)).all():
            available[b.sku] += b.quantity if b.status == StockStatus.AVAILABLE else 0
            on_hand[b.sku] += b.quantity if b.status != StockStatus.IN_TRANSIT else 0
            if not b.location.startswith("partner:") and b.status != StockStatus.IN_TRANSIT:  # on this node's own sites
                placed[(b.sku, b.location)][0] += b.quantity if b.status == StockStatus.AVAILABLE else 0
                placed[(b.sku, b.location)][1] += b.quantity
        demand = daily_demand(s, today, [code for code, _ in skus])
        # Per location reads the issue records of the demand window: asked for by people (the API, the
        # console), not by the node's own minute-by-minute check of its rules (node/services/quotes.py).
        at_location = location_demand(s, today, [code for code, _ in skus]) if by_location else {}
    out: list[SkuDecision] = []
    for code, facts in skus:
        held, total = available[code], on_hand[code]
        safety = policy.safety(policy.estimate(demand[code]), facts, held, total, calendar, safety_floor)
        env = policy.env(sku=facts, stock=StockFacts(held, safety.level, total), calendar=calendar)
        fired = policy.suggestions(env)
        places = (
            sorted({loc for (k, loc) in placed if k == code} | {loc for (k, loc) in at_location if k == code})
            if by_location
            else []
        )
        locations: list[LocationSafety] = []
        for loc in places:
            held_here, total_here = placed.get((code, loc), [0, 0])
            series = at_location.get((code, loc), [])
            here = policy.safety(policy.estimate(series), facts, held_here, total_here, calendar, 0)
            locations.append({"location": loc, "available": held_here, "safety_level": here.level})
        out.append(
            {
                "sku": code,
                "available": held,
                "safety_level": safety.level,
                "set_by_rule": safety.set_by_rule,
                "safety": safety.decision.as_evidence(),
                "suggestions": [suggestion.text for suggestion in fired],
                # Each location's own level, from the issues made there (a shop floor is not the warehouse).
                "locations": locations,
                # The same, as data, for the node's own actions (a request_quote is sent: node/services/quotes.py).
                "actions": fired,
            }
        )
    return {"rule_version": policy.version, "block": a.block, "in_force_since_block": a.since_block, "skus": out}
