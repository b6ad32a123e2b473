"""Closing a period (docs/settlement.md): every member computes the same statement from the members' anchored
records, signs its hash, and once all have signed, each records it as a `settlement` record, anchored.

    operator --POST /settlement/periods--> proposer: fetch + verify every member's records, build, sign
    proposer --StatementProposal, StatementSignature--> every member
    member (worker): fetch the proposer's document for its record cut, recompute from verified records;
        same hash: sign, StatementSignature --> every member      other hash: dispute the proposer
    every node, on each signature: all members signed the stored hash --> final, `settlement` record

The statement itself is pure (settlement/statement.py); this module fetches, verifies, stores and talks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
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
from negotiation.wire import (
    STATEMENT_PROPOSAL,
    STATEMENT_SIGNATURE,
    Refusal,
    StatementProposalFields,
    StatementProposalMessage,
    StatementSignatureFields,
    StatementSignatureMessage,
)
from node.domain.states import StatementStatus
from node.domain.times import utc_now_iso
from node.errors import InvalidRequest, LimitReached, NodeError, NotFound, SettlementInputsInvalid
from node.services.disputes import Disputes
from node.services.inbound import Inbound
from node.services.router import StatementHeard, StatementSigned, handles
from node.services.side import Side, Steps
from node.store.engine import session_scope
from node.store.records import append_record
from node.store.tables import SettlementStatement, StatementSignatureRow
from node.store.writers import ledger_transaction
from settlement.contribution import MetricValues, Period, PeriodDates, Record, contributions
from settlement.document import (
    SERVED_PARTS,
    STATEMENT_FORMAT,
    MemberInputs,
    ServedStatement,
    SignatureEntry,
    Statement,
    differing_lines,
    signed_content,
)
from settlement.statement import build_statement, statement_hash, terms_of

log = logging.getLogger(__name__)
SETTLEMENT = RecordKind.SETTLEMENT
RETRY_SECONDS = 2.0  # between two attempts at a statement that could not be checked
LEDGER = RecordKind.LEDGER
# A statement document from another node, read strictly: JSON gives every number and string its own type.
SERVED_STATEMENT: TypeAdapter[ServedStatement] = TypeAdapter(ServedStatement)


@dataclass(frozen=True)
class Verified:
    """Every member's anchored ledger records, verified against the chain, and the cut used."""

    records: dict[str, list[Record]]
    inputs: dict[str, MemberInputs]


class PeriodClosed(TypedDict):
    """A period's statement as its proposer built it: signed by this node, sent to every member."""

    id: str
    statement_hash: str
    status: str  # proposed until every member has signed the same hash, then final


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
            except NodeError as exc:
                log.info("settlement worker waits: %s", exc.message)
            except Exception:
                log.exception("settlement worker step failed")
            self._wake.wait(RETRY_SECONDS)
            self._wake.clear()

    # -- reading the members' books ------------------------------------------------------------------------
    def gather(self, cuts: Mapping[str, int] | None = None) -> Verified:
        """Every active member's anchored records, verified against the chain (see `gather_records`)."""
        contract = self.anchor_address
        if not contract:
            raise InvalidRequest("this node has no anchor contract: it cannot verify the members' records")
        return gather_records(self.directory.members(), self.web3, contract, self.peers, cuts)

    # -- the proposer --------------------------------------------------------------------------------------
    def close(self, start: date, end: date) -> PeriodClosed:
        """Build the period's statement from every member's verified records, sign it, send it to all."""
        if end < start:
            raise InvalidRequest("a period ends on or after it starts", start=str(start), end=str(end))
        # Refused before every member's history is read (checked again below, in the writing transaction).
        with session_scope(self.engine) as s:
            final = _final_for(s, start.isoformat(), end.isoformat())
        if final is not None:
            raise InvalidRequest("this period's statement is final already", statement=final)
        active = self.rules.active()
        verified = self.gather()
        statement = statement_of(verified, Period(start, end), active.policy.version, active.policy.book)
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
            final = _final_for(s, start.isoformat(), end.isoformat())
            if final is not None:
                raise InvalidRequest("this period's statement is final already", statement=final)
            row = s.get(SettlementStatement, statement["id"]) or _row(proposal.as_(StatementProposalMessage))
            row.proposer, row.problem = self.me, None
            row.status, row.document, row.statement_hash = (
                StatementStatus.PROPOSED,
                _document(statement),
                statement["statement_hash"],
            )
            s.add(row)
            self.outbox.broadcast(s, proposal, [m["member"] for m in statement["members"] if m["member"] != self.me])
        self._sign(statement["id"], statement["statement_hash"])
        self.outbox.kick()
        return {
            "id": statement["id"],
            "statement_hash": statement["statement_hash"],
            "status": self.status(statement["id"]),
        }

    # -- every member --------------------------------------------------------------------------------------
    @handles(STATEMENT_PROPOSAL)
    def on_proposal(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> StatementHeard:
        m = msg.as_(StatementProposalMessage)
        final = _final_for(s, m["periodFrom"], m["periodTo"])
        if final is not None:
            raise MessageRefused(Refusal.CLOSED, f"the period {m['periodFrom']}..{m['periodTo']} is settled ({final})")
        row = s.get(SettlementStatement, m["statement"])
        if row is None or row.statement_hash != m["statementHash"]:
            row = row or _row(m)
            row.statement_hash, row.proposer, row.status = m["statementHash"], m["proposer"], StatementStatus.VERIFYING
            row.document = None
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

    def verify_pending(self) -> int:
        """The worker's step: recompute every statement proposed to this node, sign it or dispute it. One that
        cannot be checked yet (a member unreachable, records not verifying) is tried again after a pause, its
        problem kept on the statement for the operator."""
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
        book = self.rules.book(theirs["rule_version"])
        if book is None:
            raise SettlementInputsInvalid(f"this node holds no rule book {theirs['rule_version']}")
        period = Period(date.fromisoformat(theirs["period"]["from"]), date.fromisoformat(theirs["period"]["to"]))
        mine = statement_of(verified, period, theirs["rule_version"], book.book)
        if mine["statement_hash"] == expected and mine["id"] == statement_id:
            with session_scope(self.engine) as s:
                row = s.get(SettlementStatement, statement_id)
                if row is None or row.statement_hash != expected or row.status != StatementStatus.VERIFYING:
                    return  # proposed again meanwhile: the newer proposal is checked next
                row.document, row.status, row.problem = _document(mine), StatementStatus.PROPOSED, None
                s.add(row)
            self._sign(statement_id, expected)
            log.info("statement %s recomputed: same hash, signed", statement_id)
            return
        differences = differing_lines(theirs, mine)
        with session_scope(self.engine) as s:
            row = s.get(SettlementStatement, statement_id)
            if row is None or row.statement_hash != expected or row.status != StatementStatus.VERIFYING:
                return
            row.status, row.problem = StatementStatus.DISPUTED, "; ".join(differences)[:2000]
            s.add(row)
        log.warning("statement %s differs from this node's: %s", statement_id, "; ".join(differences))
        try:
            self.disputes.open_dispute(
                statement_id, ("statement differs: " + "; ".join(differences))[:256], 0, proposer
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

    # -- signing and finality ------------------------------------------------------------------------------
    def _sign(self, statement_id: str, hash_: str) -> None:
        signature = self.signer.sign_step(
            STATEMENT_SIGNATURE, StatementSignatureFields(statement=statement_id, signer=self.me, statementHash=hash_)
        )
        with ledger_transaction(self.engine) as s:  # the last signature makes it final: a `settlement` record
            s.merge(
                StatementSignatureRow(
                    statement=statement_id,
                    signer=self.me,
                    statement_hash=hash_,
                    envelope=json.dumps(signature.as_json()),
                )
            )
            row = s.get(SettlementStatement, statement_id)
            members = _stored(row.document)["members"] if row is not None and row.document else []
            others = [m["member"] for m in members if m["member"] != self.me]
            self.outbox.broadcast(s, signature, others)
            s.flush()
            self._finalise(s, statement_id)
        self.outbox.kick()

    def _finalise(self, s: Session, statement_id: str) -> bool:
        """Final when this node holds the statement it agreed to and every member signed that same hash:
        written as a `settlement` record (anchored like the ledger)."""
        row = s.get(SettlementStatement, statement_id)
        if row is None or row.document is None or row.status not in (StatementStatus.PROPOSED, StatementStatus.FINAL):
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
        fields: SettlementRecord = {
            "lines": [],
            "corrects": None,
            "memo": f"settlement {document['period']['from']}..{document['period']['to']}",
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
        log.info("statement %s final: every member signed %s", statement_id, row.statement_hash)
        return True

    # -- reading -------------------------------------------------------------------------------------------
    def status(self, statement_id: str) -> str:
        with session_scope(self.engine) as s:
            row = s.get(SettlementStatement, statement_id)
            return str(row.status) if row else "unknown"

    def statement(self, statement_id: str) -> ServedStatement:
        """The full document: as computed, with this node's status and every signature it holds."""
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
            document = cast(ServedStatement, _stored(row.document))
            document["status"] = str(row.status)
            document["statement_hash"] = row.statement_hash
            document["signatures"] = [_signature_entry(sig) for sig in rows]
            if row.problem:
                document["problem"] = row.problem
            return document

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
) -> list[str]:
    """Everything wrong with a statement document, recomputed from the members' verified records and the
    rule book it names; [] when it is the statement those records give and every member signed its hash."""
    problems = [f"{part}: no part of a {STATEMENT_FORMAT} statement" for part in sorted(set(document) - SERVED_PARTS)]
    read = read_statement(document, "the document")
    cuts = {m: v["last_seq"] for m, v in read["inputs"].items()}
    verified = gather_records(members, web3, contract, peers, cuts)
    period = Period(date.fromisoformat(read["period"]["from"]), date.fromisoformat(read["period"]["to"]))
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


def _final_for(s: Session, start: str, end: str) -> str | None:
    """The final statement of exactly this period, if there is one: a period is settled once."""
    row = s.exec(
        select(SettlementStatement).where(
            SettlementStatement.period_from == start,
            SettlementStatement.period_to == end,
            SettlementStatement.status == StatementStatus.FINAL,
        )
    ).first()
    return row.id if row is not None else None


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
    return canonical_json({**signed_content(statement), "statement_hash": statement["statement_hash"]}).decode()


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
