"""Closing a period (docs/settlement.md): every member computes the same statement from the members' anchored
records, its operator approves it (or the rule book does for it), and once every member has signed its approval
of the same hash, each records it as a `settlement` record, anchored.

    operator --POST /settlement/periods--> proposer: fetch + verify every member's records, build: awaiting_approval
    proposer --StatementProposal--> every member
    member (worker): fetch the proposer's document for its record cut, recompute from verified records;
        same hash: awaiting_approval                    other hash: disputed, StatementDispute --> every member
    each node's operator: approve (StatementSignature --> every member), dispute (StatementDispute --> every
        member); the proposer's may withdraw (StatementWithdrawal --> every member); at the book's approval
        deadline, or at once below its `auto_approve_below`, the node approves for its member
    every node, on each signature: it approved and all members signed the stored hash --> final, `settlement`
        record; other statements of an overlapping period --> superseded

The statement itself is pure (settlement/statement.py); this module fetches, verifies, stores and talks; the life
cycle's queries and shapes are in node/services/approvals.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any, TypedDict, cast

from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session, col, select
from web3 import Web3

from chain.audit import AuditInput
from chain.auditor import audit_source, from_node
from chain.canonical import canonical_json
from chain.errors import ChainError
from chain.peers import PeerAnsweredError, PeerClient
from chain.records import RecordKind, RecordMalformed, RecordType, SettlementRecord, read_body
from chain.registry_client import MemberInfo
from negotiation.messages import Domain, MessageRefused, SignedMessage, parse, recover_signer
from negotiation.rules.book import RuleBook
from negotiation.rules.book import Settlement as SettlementRules
from negotiation.wire import (
    STATEMENT_DISPUTE,
    STATEMENT_PROPOSAL,
    STATEMENT_SIGNATURE,
    STATEMENT_WITHDRAWAL,
    Refusal,
    StatementDisputeFields,
    StatementDisputeMessage,
    StatementProposalFields,
    StatementProposalMessage,
    StatementSignatureFields,
    StatementSignatureMessage,
    StatementWithdrawalFields,
    StatementWithdrawalMessage,
)
from node.domain.states import ApprovedBy, StatementStatus
from node.domain.times import utc_iso, utc_now_iso
from node.errors import (
    InvalidRequest,
    LimitReached,
    NodeError,
    NotFound,
    PeriodApprovedAlready,
    RequestError,
    SettlementInputsInvalid,
    StatementNotReady,
    WrongStatus,
)
from node.services.approvals import (
    APPROVAL_MEMO,
    BINDING,
    LIFECYCLE_PARTS,
    MAX_LINES_CHARS,
    MAX_REASON_CHARS,
    OPEN,
    FlowKey,
    StatementView,
    differing_flows,
    fitting,
    flow_key,
    keep_notice,
    lifecycle_view,
    lines_text,
    overlapping,
    read_lines,
    stopped_by_notices,
    supersede_overlapping,
)
from node.services.disputes import Disputes
from node.services.inbound import Inbound
from node.services.router import StatementHeard, StatementSigned, StatementStated, handles
from node.services.settlement_basis import (
    documents_cut,
    final_statements,
    held_book,
    known_books,
    members_cut,
    period_closable,
    plan_books,
    proposer_cut,
    realised_statement,
)
from node.services.side import Side, Steps
from node.store.engine import session_scope
from node.store.records import append_record
from node.store.tables import SettlementStatement, StatementSignatureRow
from node.store.writers import ledger_transaction
from settlement.contribution import MetricValues, Period, PeriodDates, Record, contributions
from settlement.document import (
    REALISED_FORMAT,
    SERVED_PARTS,
    STATEMENT_FORMAT,
    MemberInputs,
    ServedStatement,
    SignatureEntry,
    Statement,
    differing_lines,
    signed_content,
)
from settlement.realised import Cut, settled_twice
from settlement.statement import build_statement, statement_hash, terms_of

log = logging.getLogger(__name__)
SETTLEMENT = RecordKind.SETTLEMENT
RETRY_SECONDS = 2.0  # between two attempts at a statement that could not be checked
LEDGER = RecordKind.LEDGER
# A statement document from another node, read strictly: JSON gives every number and string its own type.
SERVED_STATEMENT: TypeAdapter[ServedStatement] = TypeAdapter(ServedStatement)
# What a statement stored before approvals existed says: its node had computed it and signed at once.
LEGACY_PROPOSED = "proposed"


@dataclass(frozen=True)
class Verified:
    """Every member's anchored ledger records, verified against the chain, and the cut used."""

    records: dict[str, list[Record]]
    inputs: dict[str, MemberInputs]


class StatementState(TypedDict):
    """A statement after an operator's step (closed, approved, disputed, withdrawn): its status on this node."""

    id: str
    statement_hash: str
    status: str  # StatementStatus


class MemberMetrics(TypedDict):
    member: str
    metrics: MetricValues


class MetricsStep(TypedDict):
    period: PeriodDates
    members: dict[str, MetricValues]  # by member address


class Contributions(TypedDict):
    """The unsettled view of a period: every member's metrics from its verified records now (docs/settlement.md,
    section 1), the records used, and the same metrics day by day (week by week past two weeks)."""

    period: PeriodDates
    members: list[MemberMetrics]
    inputs: dict[str, MemberInputs]
    series: list[MetricsStep]


class Settlements(Steps):
    def __init__(
        self,
        side: Side,
        disputes: Disputes,
        web3: Web3,
        anchor_address: str | None,
        peers: PeerClient,
    ) -> None:
        """`peers`: the node's one client to other nodes, with its audit token (every member's records and the
        proposer's document come through it)."""
        super().__init__(side)
        self.disputes = disputes
        self.web3 = web3
        self.anchor_address = anchor_address
        self.peers = peers
        self._next_try: dict[str, float] = {}
        # Recomputing reads every member's history: its own thread, so deliveries and plans never wait on it.
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.upgrade_legacy_statuses()
        self._thread = threading.Thread(target=self._run, name="settlement", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.verify_pending()
                self.deem_due()
            except NodeError as exc:
                log.info("settlement worker waits: %s", exc.message)
            except Exception:
                log.exception("settlement worker step failed")
            self._wake.wait(self._pause())
            self._wake.clear()

    def _pause(self) -> float:
        """Until the next pass: RETRY_SECONDS, or less when an approval falls due before then."""
        now = utc_now_iso()
        with session_scope(self.engine) as s:
            due = s.exec(
                select(SettlementStatement.approval_due_at)
                .where(
                    SettlementStatement.status == StatementStatus.AWAITING_APPROVAL,
                    col(SettlementStatement.approval_due_at) > now,
                )
                .order_by(col(SettlementStatement.approval_due_at))
            ).first()
        if due is None:
            return RETRY_SECONDS
        left = (_moment(due) - datetime.now(UTC)).total_seconds()
        return min(RETRY_SECONDS, max(0.01, left))

    def upgrade_legacy_statuses(self) -> int:
        """Statements stored before approvals existed: `proposed` meant this node computed the statement and
        signed it at once, so it is `approved` where its signature is held (`awaiting_approval` otherwise, as
        when the node stopped between storing and signing). Returns how many were upgraded."""
        with session_scope(self.engine) as s:
            rows = s.exec(select(SettlementStatement).where(col(SettlementStatement.status) == LEGACY_PROPOSED)).all()
            for row in rows:
                signed = s.get(StatementSignatureRow, (row.id, self.me, row.statement_hash)) is not None
                row.status = StatementStatus.APPROVED if signed else StatementStatus.AWAITING_APPROVAL
                s.add(row)
            return len(rows)

    # -- reading the members' books ------------------------------------------------------------------------
    def gather(self, cuts: Mapping[str, int] | None = None) -> Verified:
        """Every active member's anchored records, verified against the chain (see `gather_records`)."""
        contract = self.anchor_address
        if not contract:
            raise InvalidRequest("this node has no anchor contract: it cannot verify the members' records")
        return gather_records(self.directory.members(), self.web3, contract, self.peers, cuts)

    # -- the proposer --------------------------------------------------------------------------------------
    def close(self, start: date, end: date, corrects: str | None = None) -> StatementState:
        """Build the period's statement from every member's verified records and send it to all. Closing is not
        approving: the statement awaits this node's operator like every member's."""
        period = period_closable(start, end, datetime.now(UTC).date())
        active = self.rules.active()
        # The cut is taken before the members' books are read: what they record later waits for the next
        # statement, and the final statements it builds on are those final here now.
        with session_scope(self.engine) as s:
            cut = proposer_cut(s, self.me, utc_now_iso(), corrects)
        verified = self.gather()
        statement = self._realised(verified, period, (active.policy.version, active.policy.book), cut)
        proposal = self.signer.sign_step(
            STATEMENT_PROPOSAL,
            StatementProposalFields(
                statement=statement["id"],
                proposer=self.me,
                periodFrom=start.isoformat(),
                periodTo=end.isoformat(),
                ruleVersion=active.policy.version,
                statementHash=statement["statement_hash"],
            ),
        )
        with session_scope(self.engine) as s:
            _refuse_changed_finals(s, cut)
            row = s.get(SettlementStatement, statement["id"])
            _refuse_proposing_again(row, statement["statement_hash"])
            if row is None or row.statement_hash != statement["statement_hash"] or row.document is None:
                row = _reset(row or _row(proposal.as_(StatementProposalMessage)), self.me, statement["statement_hash"])
                row.status, row.document = StatementStatus.AWAITING_APPROVAL, _document(statement)
                row.approval_due_at = self._due_at(row.rule_version)
                s.add(row)
            self.outbox.broadcast(s, proposal, [m["member"] for m in statement["members"] if m["member"] != self.me])
        self.outbox.kick()
        self._approve_if_small(statement["id"])
        return self.state(statement["id"])

    def withdraw(self, statement_id: str, reason: str = "") -> StatementState:
        """The proposer takes its statement back before it approved it (or once a member disputed it): a signed
        StatementWithdrawal to every member, which stops it everywhere it arrives."""
        with session_scope(self.engine) as s:
            hash_ = _withdrawable(s, statement_id, self.me).statement_hash
        withdrawal = self.signer.sign_step(
            STATEMENT_WITHDRAWAL,
            StatementWithdrawalFields(statement=statement_id, proposer=self.me, statementHash=hash_, reason=reason),
        )
        with ledger_transaction(self.engine) as s:
            row = _withdrawable(s, statement_id, self.me)
            _same_hash(row, hash_)
            keep_notice(s, withdrawal, self.me, reason)
            row.status = StatementStatus.WITHDRAWN
            s.add(row)
            self.outbox.broadcast(s, withdrawal, self._others(row))
            state = _state(row)
        self.outbox.kick()
        log.info("statement %s withdrawn by this node, its proposer", statement_id)
        return state

    # -- every member --------------------------------------------------------------------------------------
    @handles(STATEMENT_PROPOSAL)
    def on_proposal(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> StatementHeard:
        m = msg.as_(StatementProposalMessage)
        row = s.get(SettlementStatement, m["statement"])
        if row is not None and row.statement_hash != m["statementHash"] and row.status == StatementStatus.APPROVED:
            raise MessageRefused(
                Refusal.CLOSED, f"this member approved statement {row.id} as it was: it goes final or is disputed first"
            )
        if row is None or row.statement_hash != m["statementHash"]:
            row = _reset(row or _row(m), m["proposer"], m["statementHash"])
            row.status = stopped_by_notices(s, row) or StatementStatus.VERIFYING
            s.add(row)
            self._wake.set()
        return {"statement": m["statement"]}

    @handles(STATEMENT_SIGNATURE)
    def on_signature(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> StatementSigned:
        m = msg.as_(StatementSignatureMessage)
        s.merge(
            StatementSignatureRow(
                statement=m["statement"],
                signer=m["signer"],
                statement_hash=m["statementHash"],
                envelope=json.dumps(msg.as_json()),
            )
        )
        s.flush()
        return {"final": self._finalise(s, m["statement"])}

    @handles(STATEMENT_DISPUTE)
    def on_dispute(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> StatementStated:
        """A member's dispute: kept (even before the proposal it names), and the statement of that hash stops
        here; the proposer shows its reason and lines."""
        m = msg.as_(StatementDisputeMessage)
        read_lines(m["lines"])
        row = s.get(SettlementStatement, m["statement"])
        if row is not None and row.document is not None and m["member"] not in _members(row):
            raise MessageRefused(Refusal.NOT_YOURS, f"{m['member']} is no member of statement {row.id}")
        keep_notice(s, msg, m["member"], m["reason"], m["lines"])
        if row is not None and row.statement_hash == m["statementHash"] and row.status in OPEN:
            row.status = StatementStatus.DISPUTED
            s.add(row)
            log.warning("statement %s disputed by %s: %s", row.id, m["member"], m["reason"])
        return {"statement": m["statement"], "status": str(row.status) if row is not None else "unknown"}

    @handles(STATEMENT_WITHDRAWAL)
    def on_withdrawal(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> StatementStated:
        m = msg.as_(StatementWithdrawalMessage)
        row = s.get(SettlementStatement, m["statement"])
        if row is not None and row.proposer != m["proposer"]:
            raise MessageRefused(Refusal.NOT_YOURS, f"statement {row.id} was proposed by {row.proposer}")
        if row is not None and row.statement_hash == m["statementHash"] and row.status == StatementStatus.FINAL:
            raise MessageRefused(Refusal.CLOSED, f"statement {row.id} is final here")
        keep_notice(s, msg, m["proposer"], m["reason"])
        if (
            row is not None
            and row.statement_hash == m["statementHash"]
            and row.status in (*OPEN, StatementStatus.DISPUTED)
        ):
            row.status = StatementStatus.WITHDRAWN
            s.add(row)
        return {"statement": m["statement"], "status": str(row.status) if row is not None else "unknown"}

    def verify_pending(self) -> int:
        """The worker's step: recompute every statement proposed to this node; the same hash awaits this node's
        operator, another is disputed. One that cannot be checked yet (a member unreachable, records not
        verifying) is tried again after a pause, its problem kept on the statement for the operator."""
        with session_scope(self.engine) as s:
            waiting = [
                r.id
                for r in s.exec(
                    select(SettlementStatement).where(SettlementStatement.status == StatementStatus.VERIFYING)
                ).all()
            ]
        now = time.monotonic()
        for statement_id in waiting:
            if self._next_try.get(statement_id, 0.0) > now:
                continue
            try:
                self._verify(statement_id)
            except Exception as exc:
                self._next_try[statement_id] = time.monotonic() + RETRY_SECONDS
                log.warning("statement %s cannot be checked yet: %s", statement_id, exc)
                with session_scope(self.engine) as s:
                    row = s.get(SettlementStatement, statement_id)
                    if row is not None:
                        row.problem = str(exc)[:2000]
                        s.add(row)
        return len(waiting)

    def _verify(self, statement_id: str) -> None:
        with session_scope(self.engine) as s:
            row = s.get(SettlementStatement, statement_id)
            assert row is not None
            proposer, expected = row.proposer, row.statement_hash
            signed = {"from": row.period_from, "to": row.period_to}, row.rule_version
        theirs = self._fetch_document(proposer, statement_id)
        if (theirs.get("period"), theirs.get("rule_version")) != signed:
            raise SettlementInputsInvalid(
                f"the proposer serves another period or rule book than it proposed for {statement_id}"
            )
        cuts = {m: v["last_seq"] for m, v in theirs["inputs"].items()}
        verified = self.gather(cuts)
        period = Period(date.fromisoformat(theirs["period"]["from"]), date.fromisoformat(theirs["period"]["to"]))
        mine = self._recomputed(theirs, verified, period)
        if mine["statement_hash"] == expected and mine["id"] == statement_id:
            with session_scope(self.engine) as s:
                row = s.get(SettlementStatement, statement_id)
                if row is None or row.statement_hash != expected or row.status != StatementStatus.VERIFYING:
                    return  # proposed again, disputed or withdrawn meanwhile
                row.document, row.status, row.problem = _document(mine), StatementStatus.AWAITING_APPROVAL, None
                row.approval_due_at = self._due_at(row.rule_version)
                s.add(row)
            log.info("statement %s recomputed: same hash, awaiting this node's approval", statement_id)
            self._approve_if_small(statement_id)
            return
        self._differs(statement_id, expected, theirs, mine)

    def _recomputed(self, theirs: ServedStatement, verified: Verified, period: Period) -> Statement:
        """This member's own statement for a proposal: format 2 under the rule book in force here (a statement
        under any other book differs, and is disputed), with the proposer's cut, built on every statement final
        here; a format-1 proposal under the book it names."""
        if theirs["format"] != REALISED_FORMAT:
            book = self.rules.book(theirs["rule_version"])
            if book is None:
                raise SettlementInputsInvalid(f"this node holds no rule book {theirs['rule_version']}")
            return statement_of(verified, period, theirs["rule_version"], book.book)
        with session_scope(self.engine) as s:
            cut = members_cut(s, theirs)
        active = self.rules.active()
        return self._realised(verified, period, (active.policy.version, active.policy.book), cut)

    def _realised(self, verified: Verified, period: Period, book: tuple[str, RuleBook], cut: Cut) -> Statement:
        """The format-2 statement, each plan valued under the book it was made under (fetched from a member
        when this node does not hold it)."""
        books = known_books(plan_books(verified.records), lambda v: held_book(self.rules.book(v)))
        return realised_statement(verified.records, verified.inputs, period, book, books, cut)

    def _differs(self, statement_id: str, expected: str, theirs: ServedStatement, mine: Statement) -> None:
        """This node computes another statement: it will not approve it, tells every member why (a signed
        StatementDispute naming the proposer's flows it does not hold) and opens a dispute with the proposer."""
        differences = differing_lines(theirs, mine)
        reason = ("this node computes another statement: " + "; ".join(differences))[:MAX_REASON_CHARS]
        lines = fitting(differing_flows(theirs["flows"], mine["flows"]))
        dispute = self._signed_dispute(statement_id, expected, reason, lines)
        with session_scope(self.engine) as s:
            row = s.get(SettlementStatement, statement_id)
            if row is None or row.statement_hash != expected or row.status != StatementStatus.VERIFYING:
                return
            row.status, row.problem = StatementStatus.DISPUTED, "; ".join(differences)[:2000]
            s.add(row)
            keep_notice(s, dispute, self.me, reason, dispute.message["lines"])
            members = [m["member"] for m in theirs["members"] if m["member"] != self.me]
            self.outbox.broadcast(s, dispute, members)
        self.outbox.kick()
        log.warning("statement %s differs from this node's: %s", statement_id, "; ".join(differences))
        try:
            self.disputes.open_dispute(
                statement_id, ("statement differs: " + "; ".join(differences))[:256], 0, row.proposer
            )
        except LimitReached as exc:
            log.warning("statement %s: dispute not opened: %s", statement_id, exc.message)

    def _fetch_document(self, proposer: str, statement_id: str) -> ServedStatement:
        url = self.directory.member(proposer).node_url
        try:
            document = self.peers.statement_document(url, statement_id)
        except PeerAnsweredError as exc:
            raise SettlementInputsInvalid(f"the proposer answered {exc.status} for statement {statement_id}") from exc
        return read_statement(document, f"the proposer's document for {statement_id}")

    # -- approving and disputing -----------------------------------------------------------------------------
    def approve(self, statement_id: str, by: ApprovedBy = ApprovedBy.OPERATOR) -> StatementState:
        """This member approves the statement it awaits: its node signs the StatementSignature of its hash (the
        approval) and sends it to every member; final here if every other member's is held already. A member
        approves one statement of a period: refused while another of an overlapping period it approved may
        still go final."""
        with session_scope(self.engine) as s:
            hash_ = _awaiting(s, statement_id).statement_hash
        signature = self.signer.sign_step(
            STATEMENT_SIGNATURE, StatementSignatureFields(statement=statement_id, signer=self.me, statementHash=hash_)
        )
        with ledger_transaction(self.engine) as s:  # the last approval makes it final: a `settlement` record
            row = _awaiting(s, statement_id)
            _same_hash(row, hash_)
            s.merge(
                StatementSignatureRow(
                    statement=statement_id,
                    signer=self.me,
                    statement_hash=hash_,
                    envelope=json.dumps(signature.as_json()),
                )
            )
            row.status, row.approved_by, row.approved_at = StatementStatus.APPROVED, by, utc_now_iso()
            s.add(row)
            self.outbox.broadcast(s, signature, self._others(row))
            s.flush()
            self._finalise(s, statement_id)
            state = _state(row)
        self.outbox.kick()
        log.info("statement %s approved here (%s)", statement_id, by)
        return state

    def dispute(self, statement_id: str, reason: str, lines: Sequence[FlowKey]) -> StatementState:
        """This member's operator disputes the statement it awaits, saying why and naming the flows (keys of the
        statement's `flows`) it contests: a signed StatementDispute to every member, which stops it there."""
        reason = reason.strip()
        if not reason:
            raise InvalidRequest("a dispute says why")
        with session_scope(self.engine) as s:
            row = _awaiting(s, statement_id, approving=False)
            if row.proposer == self.me:
                raise InvalidRequest("a proposer withdraws its own statement rather than dispute it", statement=row.id)
            flows = {flow_key(f) for f in _stored(row.document)["flows"]} if row.document else set()
            unknown = [line for line in lines if flow_key(line) not in flows]
            if unknown:
                raise InvalidRequest(f"statement {row.id} has no flow {unknown[0]}", line=unknown[0])
            if len(lines_text(lines)) > MAX_LINES_CHARS:
                raise InvalidRequest(f"a dispute names lines of at most {MAX_LINES_CHARS} characters as JSON")
            hash_ = row.statement_hash
        dispute = self._signed_dispute(statement_id, hash_, reason, lines)
        with ledger_transaction(self.engine) as s:
            row = _awaiting(s, statement_id, approving=False)
            _same_hash(row, hash_)
            keep_notice(s, dispute, self.me, reason, dispute.message["lines"])
            row.status = StatementStatus.DISPUTED
            s.add(row)
            self.outbox.broadcast(s, dispute, self._others(row))
            state = _state(row)
        self.outbox.kick()
        log.info("statement %s disputed by this node's operator: %s", statement_id, reason)
        return state

    def _signed_dispute(self, statement_id: str, hash_: str, reason: str, lines: Sequence[FlowKey]) -> SignedMessage:
        fields = StatementDisputeFields(
            statement=statement_id, member=self.me, statementHash=hash_, reason=reason, lines=lines_text(lines)
        )
        return self.signer.sign_step(STATEMENT_DISPUTE, fields)

    def deem_due(self) -> int:
        """The worker's step: every statement still awaiting this node's operator at its approval deadline is
        deemed approved, its node signing for its member (`approved_by: deadline`). Returns how many."""
        now = utc_now_iso()
        with session_scope(self.engine) as s:
            rows = s.exec(
                select(SettlementStatement).where(SettlementStatement.status == StatementStatus.AWAITING_APPROVAL)
            ).all()
            for row in rows:
                if row.approval_due_at is None:  # upgraded from before approvals: its deadline runs from now
                    row.approval_due_at = self._due_at(row.rule_version)
                    s.add(row)
            due = [r.id for r in rows if r.approval_due_at is not None and r.approval_due_at <= now]
        deemed = 0
        for statement_id in due:
            deemed += self._approve_for_member(statement_id, ApprovedBy.DEADLINE)
        return deemed

    def _approve_if_small(self, statement_id: str) -> None:
        """At once, for the member, when the book's `auto_approve_below` is above its net payable."""
        with session_scope(self.engine) as s:
            row = s.get(SettlementStatement, statement_id)
            if row is None or row.status != StatementStatus.AWAITING_APPROVAL or row.document is None:
                return
            rules, scale = self._settlement_rules(row.rule_version)
            mine = [m for m in _stored(row.document)["members"] if m["member"] == self.me]
        below = Fraction(rules.auto_approve_below) * scale
        if mine and below > 0 and max(0, -mine[0]["net"]) < below:
            self._approve_for_member(statement_id, ApprovedBy.AUTOMATIC)

    def _approve_for_member(self, statement_id: str, by: ApprovedBy) -> int:
        """The node approves without its operator; what stops it (an approval of an overlapping period, the
        statement disputed meanwhile) is kept on the statement for the operator. 1 if approved."""
        try:
            self.approve(statement_id, by)
            return 1
        except RequestError as exc:
            said = f"not approved by the {by}: {exc.message}"
            with session_scope(self.engine) as s:
                row = s.get(SettlementStatement, statement_id)
                if row is not None and row.problem != said:  # the worker tries each pass: written once
                    row.problem = said
                    s.add(row)
            return 0

    def _settlement_rules(self, version: str) -> tuple[SettlementRules, int]:
        """The settlement section of the statement's rule book and its money's minor units per major unit (the
        defaults if this node holds no copy of it)."""
        checked = self.rules.book(version)
        if checked is None:
            return SettlementRules(), 100
        return checked.book.settlement, 10**checked.book.currency.minor_units

    def _due_at(self, version: str) -> str:
        seconds = self._settlement_rules(version)[0].approval_deadline_seconds
        return utc_iso(datetime.now(UTC) + timedelta(seconds=seconds))

    def _others(self, row: SettlementStatement) -> list[str]:
        return [m for m in _members(row) if m != self.me]

    # -- finality ------------------------------------------------------------------------------------------
    def _finalise(self, s: Session, statement_id: str) -> bool:
        """Final when this node approved the statement and every member signed that same hash: written as a
        `settlement` record (anchored like the ledger); other statements of an overlapping period here are
        superseded."""
        row = s.get(SettlementStatement, statement_id)
        if row is None or row.document is None or row.status not in (StatementStatus.APPROVED, StatementStatus.FINAL):
            return False
        if row.status == StatementStatus.FINAL:
            return True
        document = json.loads(row.document)
        needed = {m["member"] for m in document["members"]}
        signatures = s.exec(
            select(StatementSignatureRow).where(
                StatementSignatureRow.statement == statement_id,
                StatementSignatureRow.statement_hash == row.statement_hash,
            )
        ).all()
        signed = {sig.signer: sig for sig in signatures}
        if not needed <= set(signed):
            return False
        memo = f"settlement {document['period']['from']}..{document['period']['to']}"
        fields: SettlementRecord = {
            "lines": [],
            "corrects": None,
            "memo": memo if row.approved_by is None else f"{memo}; {APPROVAL_MEMO[ApprovedBy(row.approved_by)]}",
            "evidence": [{"source": "statement", "reference": statement_id}],
            "settlement": {
                "statement": statement_id,
                "statement_hash": row.statement_hash,
                "period": document["period"],
                "rule_version": document["rule_version"],
                "signatures": [_signature_entry(signed[signer]) for signer in sorted(needed, key=str.lower)],
            },
        }
        row.record_seq = append_record(s, SETTLEMENT, self.me, RecordType.SETTLEMENT, fields).seq
        row.status = StatementStatus.FINAL
        s.add(row)
        superseded = supersede_overlapping(s, row)
        log.info(
            "statement %s final: every member signed %s; superseded: %s", statement_id, row.statement_hash, superseded
        )
        return True

    # -- reading -------------------------------------------------------------------------------------------
    def state(self, statement_id: str) -> StatementState:
        with session_scope(self.engine) as s:
            row = s.get(SettlementStatement, statement_id)
            if row is None:
                raise NotFound(f"no statement {statement_id} on this node", statement=statement_id)
            return _state(row)

    def statement(self, statement_id: str) -> StatementView:
        """The full document: as computed, with this node's status, every signature (approval) of its hash it
        holds, and its life cycle here (how this node approved, disputes, a withdrawal)."""
        with session_scope(self.engine) as s:
            row = s.get(SettlementStatement, statement_id)
            if row is None or row.document is None:
                raise NotFound(f"no statement {statement_id} computed on this node", statement=statement_id)
            rows = s.exec(
                select(StatementSignatureRow)
                .where(
                    StatementSignatureRow.statement == statement_id,
                    StatementSignatureRow.statement_hash == row.statement_hash,
                )
                .order_by(col(StatementSignatureRow.signer))
            ).all()
            document = cast(StatementView, _stored(row.document))
            document["status"] = str(row.status)
            document["statement_hash"] = row.statement_hash
            document["signatures"] = [_signature_entry(sig) for sig in rows]
            if row.problem:
                document["problem"] = row.problem
            return cast(StatementView, {**document, **lifecycle_view(s, row)})

    def statements(self) -> list[SettlementStatement]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(SettlementStatement).order_by(col(SettlementStatement.created_at))).all())

    def live_contributions(self, start: date, end: date) -> Contributions:
        """The unsettled view: every member's metrics for the period from its verified records now."""
        terms = terms_of(self.rules.active().policy.book).metric_terms
        verified = self.gather()
        try:
            metrics = contributions(verified.records, Period(start, end), terms)
            # The same metrics step by step (a day, or a week past two weeks), from the same verified records.
            series: list[MetricsStep] = [
                {
                    "period": step.as_dict(),
                    "members": {m: x.as_dict() for m, x in contributions(verified.records, step, terms).items()},
                }
                for step in steps_of(Period(start, end))
            ]
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise SettlementInputsInvalid(f"a member's record cannot be read for settlement: {exc!r}") from exc
        return {
            "period": {"from": start.isoformat(), "to": end.isoformat()},
            "members": [{"member": m, "metrics": metrics[m].as_dict()} for m in sorted(metrics, key=str.lower)],
            "inputs": verified.inputs,
            "series": series,
        }


MAX_STEPS = 26


def steps_of(period: Period) -> list[Period]:
    """The period cut into days (up to 14 days), else weeks, the last one ending with the period; at most
    MAX_STEPS of them, the latest kept."""
    length = 1 if period.days <= 14 else 7
    steps: list[Period] = []
    end = period.end
    while end >= period.start and len(steps) < MAX_STEPS:
        begin = max(period.start, end - timedelta(days=length - 1))
        steps.append(Period(begin, end))
        end = begin - timedelta(days=1)
    return steps[::-1]


def gather_records(
    members: Sequence[MemberInfo],
    web3: Web3 | str,
    contract: str,
    peers: PeerClient,
    cuts: Mapping[str, int] | None = None,
) -> Verified:
    """Every active member's anchored ledger records, each node's whole history verified against the chain
    first (trusting no node); with `cuts`, only records up to each member's cut, which must all be anchored.
    A member unreachable or whose records do not verify stops it, named."""
    records: dict[str, list[Record]] = {}
    inputs: dict[str, MemberInputs] = {}
    for member in sorted(members, key=lambda m: m.address.lower()):
        if not member.active:
            continue
        try:
            source = from_node(peers, member.node_url, LEDGER)
            report = audit_source(source, web3, contract)
        except (ChainError, ValueError) as exc:  # the peer's errors too (chain/peers.py)
            raise SettlementInputsInvalid(f"{member.name} ({member.address}): {exc}", member=member.address) from exc
        if not report.ok:
            raise SettlementInputsInvalid(
                f"{member.name} ({member.address}): records do not verify: {report.findings[0]}",
                member=member.address,
            )
        cut = None if cuts is None else cuts.get(member.address)
        records[member.address], inputs[member.address] = _cut(source.audit, cut, member.address)
        _read_every_record(records[member.address], member)
    return Verified(records, inputs)


def _read_every_record(records: list[Record], member: MemberInfo) -> None:
    """Each record checked against its type's declared body (chain/records.py) before any is counted: a record
    that verifies on chain but does not fit its declaration stops the statement, named, instead of being read
    as whatever its keys happen to say."""
    for record in records:
        try:
            read_body(record)
        except RecordMalformed as exc:
            raise SettlementInputsInvalid(
                f"{member.name} ({member.address}): record {record.get('seq')} is no record as declared: {exc}",
                member=member.address,
                seq=record.get("seq"),
            ) from exc


def verify_statement(
    document: Mapping[str, Any],
    members: Sequence[MemberInfo],
    web3: Web3,
    contract: str,
    book: RuleBook,
    domain: Domain,
    peers: PeerClient,
    earlier: Mapping[str, Mapping[str, Any]] | None = None,
    book_of: Callable[[str], RuleBook | None] | None = None,
) -> list[str]:
    """Everything wrong with a statement document, recomputed from the members' verified records and the
    rule book it names; [] when it is the statement those records give and every member signed its hash.
    A format-2 statement is recomputed with its cut, over the final statements it builds on (`earlier`, by id:
    each reference they settled left out, none settled twice), each plan under the book `book_of` its version
    gives."""
    # A node's view adds the statement's life cycle there (approvals, disputes): not part of the statement.
    parts = set(document) - SERVED_PARTS - LIFECYCLE_PARTS
    problems = [f"{part}: no part of a statement" for part in sorted(parts)]
    read = read_statement(document, "the document")
    cuts = {m: v["last_seq"] for m, v in read["inputs"].items()}
    verified = gather_records(members, web3, contract, peers, cuts)
    period = Period(date.fromisoformat(read["period"]["from"]), date.fromisoformat(read["period"]["to"]))
    if read["format"] == REALISED_FORMAT:
        finals = {i: read_statement(d, f"final statement {i}") for i, d in (earlier or {}).items()}
        mine = realised_statement(
            verified.records,
            verified.inputs,
            period,
            (read["rule_version"], book),
            known_books(plan_books(verified.records), book_of or (lambda _v: None)),
            documents_cut(read, finals),
        )
        problems += settled_twice([*finals.values(), read])
    else:
        mine = statement_of(verified, period, read["rule_version"], book)
    if mine["statement_hash"] != read["statement_hash"] or statement_hash(document) != mine["statement_hash"]:
        problems += [f"differs from the recomputed statement: {line}" for line in differing_lines(read, mine)]
    needed = {m["member"] for m in mine["members"]}
    signed = set()
    for entry in read["signatures"]:
        try:
            msg = parse(
                {"type": STATEMENT_SIGNATURE.type, "message": entry["message"], "signature": entry["signature"]}
            )
            signer = recover_signer(domain, msg.type, msg.message, msg.signature)
        except (MessageRefused, KeyError, TypeError) as exc:
            problems.append(f"signature of {entry.get('signer')}: {exc}")
            continue
        m = msg.as_(StatementSignatureMessage)
        if signer != m["signer"] or signer != entry.get("signer"):
            problems.append(f"signature of {entry.get('signer')} was made by {signer}")
        elif m["statementHash"] != mine["statement_hash"] or m["statement"] != mine["id"]:
            problems.append(f"{signer} signed another statement or hash ({m['statement']}, {m['statementHash']})")
        else:
            signed.add(signer)
    problems += [f"{member} has not signed" for member in sorted(needed - signed, key=str.lower)]
    return problems


def statement_of(verified: Verified, period: Period, rule_version: str, book: RuleBook) -> Statement:
    """The statement of verified records. Records verify against the chain yet may still be malformed (a
    member's software wrote them): such a record stops the statement, named, never with a crash."""
    try:
        return build_statement(verified.records, period, rule_version, terms_of(book), verified.inputs)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise SettlementInputsInvalid(f"a member's record cannot be read for settlement: {exc!r}") from exc


def _signature_entry(row: StatementSignatureRow) -> SignatureEntry:
    """A member's signature as the statement and the settlement record show it: signer, message, signature."""
    envelope = json.loads(row.envelope)
    return {"signer": row.signer, "message": envelope["message"], "signature": envelope["signature"]}


def _row(m: StatementProposalMessage) -> SettlementStatement:
    return SettlementStatement(
        id=m["statement"],
        period_from=m["periodFrom"],
        period_to=m["periodTo"],
        rule_version=m["ruleVersion"],
        proposer=m["proposer"],
        statement_hash=m["statementHash"],
        created_at=utc_now_iso(),
    )


def read_statement(document: object, whose: str) -> ServedStatement:
    """A statement document from elsewhere (another node, a file), checked against the statement model."""
    try:
        return SERVED_STATEMENT.validate_python(document, strict=True)
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors()[:3])
        raise SettlementInputsInvalid(f"{whose} is not a {STATEMENT_FORMAT} statement: {wrong}") from exc


def _document(statement: Statement) -> str:
    """The statement as this node stores it: its signed parts and their hash (the status and the signatures
    are kept apart, as they change)."""
    stored = {**signed_content(statement), "id": statement["id"], "statement_hash": statement["statement_hash"]}
    return canonical_json(stored).decode()


def _stored(document: str) -> Statement:
    """A document this node stored (`_document`): its own, or one it recomputed to the same hash."""
    return cast(Statement, json.loads(document))


def _cut(audit: AuditInput, cut: int | None, member: str) -> tuple[list[Record], MemberInputs]:
    """The member's anchored records up to `cut` (all anchored ones without), and what was used."""
    records: list[Record] = []
    roots: list[str] = []
    for batch in audit.batches:
        if cut is not None and batch.records and int(batch.records[0]["seq"]) > cut:
            break
        roots.append(batch.root)
        records.extend(r for r in batch.records if cut is None or int(r["seq"]) <= cut)
    last = int(records[-1]["seq"]) if records else 0
    if cut is not None and last < cut:
        raise SettlementInputsInvalid(f"{member} has anchored records up to {last} only, the statement used {cut}")
    return records, {"last_seq": last, "batch_roots": roots}


def _awaiting(s: Session, statement_id: str, approving: bool = True) -> SettlementStatement:
    """The statement awaiting this node's operator: refused if unknown, not recomputed yet, or past that; when
    `approving`, refused too while this member's approval of another statement of an overlapping period may
    still go final (one approval per period)."""
    row = s.get(SettlementStatement, statement_id)
    if row is None:
        raise NotFound(f"no statement {statement_id} on this node", statement=statement_id)
    if row.status == StatementStatus.VERIFYING:
        raise StatementNotReady(
            f"statement {statement_id} is being recomputed here; it can be approved or disputed once it awaits "
            "approval",
            statement=statement_id,
        )
    if row.status != StatementStatus.AWAITING_APPROVAL:
        raise WrongStatus(
            f"statement {statement_id} is {row.status} here: it is approved or disputed while it awaits approval",
            statement=statement_id,
            status=str(row.status),
        )
    other = overlapping(s, row.period_from, row.period_to, BINDING, row.id) if approving else None
    if other is not None:
        raise PeriodApprovedAlready(
            f"this member approved statement {other.id} ({other.period_from}..{other.period_to}, {other.status}) "
            "of an overlapping period: a member approves one statement of a period",
            statement=statement_id,
            approved=other.id,
        )
    return row


def _withdrawable(s: Session, statement_id: str, me: str) -> SettlementStatement:
    """This node's own proposal, not approved by it yet (or disputed by a member, so it cannot go final)."""
    row = s.get(SettlementStatement, statement_id)
    if row is None:
        raise NotFound(f"no statement {statement_id} on this node", statement=statement_id)
    if row.proposer != me:
        raise InvalidRequest(f"statement {statement_id} was proposed by {row.proposer}: only its proposer withdraws it")
    if row.status not in (StatementStatus.AWAITING_APPROVAL, StatementStatus.DISPUTED):
        raise WrongStatus(
            f"statement {statement_id} is {row.status} here: a proposer withdraws a statement before it approves it",
            statement=statement_id,
            status=str(row.status),
        )
    return row


def _refuse_proposing_again(row: SettlementStatement | None, hash_: str) -> None:
    """A statement proposed again under its id (a format-1 id names the period, rule book and members, so a new
    cut keeps the id): the same one while it may still go final is sent again; another hash only once the
    earlier one cannot go final (disputed, withdrawn, superseded), or members who approved it would be bound."""
    if row is None:
        return
    if row.statement_hash == hash_ and row.status not in OPEN:
        raise WrongStatus(
            f"this very statement is {row.status} here: close the period again once the records changed",
            statement=row.id,
            status=str(row.status),
        )
    if row.statement_hash != hash_ and row.status in OPEN:
        raise WrongStatus(
            f"statement {row.id} as proposed before is {row.status} here and may still go final: its proposer "
            "withdraws it, or a member disputes it, first",
            statement=row.id,
            status=str(row.status),
        )


def _same_hash(row: SettlementStatement, hash_: str) -> None:
    if row.statement_hash != hash_:
        raise WrongStatus(f"statement {row.id} was proposed again meanwhile: look at it again", statement=row.id)


def _refuse_changed_finals(s: Session, cut: Cut) -> None:
    """A statement went final while this one was computed: this one may settle what that one did. Close again."""
    final = sorted(set(final_statements(s)) - set(cut.after))
    if final:
        raise WrongStatus(f"statement {final[0]} went final meanwhile: close the period again", statement=final[0])


def _reset(row: SettlementStatement, proposer: str, hash_: str) -> SettlementStatement:
    """A statement (new, or proposed again with another hash): nothing of an earlier proposal carries over."""
    row.proposer, row.statement_hash, row.status = proposer, hash_, StatementStatus.VERIFYING
    row.document = row.problem = row.approval_due_at = row.approved_at = None
    row.approved_by = None
    return row


def _state(row: SettlementStatement) -> StatementState:
    return {"id": row.id, "statement_hash": row.statement_hash, "status": str(row.status)}


def _members(row: SettlementStatement) -> list[str]:
    """The members of a statement this node holds the document of (none before it recomputed it)."""
    return [m["member"] for m in _stored(row.document)["members"]] if row.document else []


def _moment(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
