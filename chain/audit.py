"""The auditor's checks, as pure logic over claimed documents and facts read from the chain.

Nothing a node says about the chain is believed: leaves are recomputed from records, each batch's root
is recomputed from its leaves, and roots, leaf counts and transactions are compared with the anchor
contract's own events. docs/proof-format.md describes every check so another verifier can repeat it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chain.canonical import leaf_hash_fast
from chain.errors import BadDocument, NotCanonicalizable
from chain.merkle import ProofStep, fold_proof, merkle_root, path_sides, sides_of

ZERO_ROOT_HEX = "00" * 32

# The version of docs/proof-format.md that pages, documents and exports follow: the node writes it, the
# auditor reads it. Missing means this version (nodes and exports from before it was written); any other
# value is a version this code does not know, and is refused rather than guessed at.
PROOF_FORMAT = "consortium-proof/1"


def check_format(value: Any, what: str) -> None:
    """Refuse `what` if it names a proof format other than PROOF_FORMAT (a missing one, None, is version 1)."""
    if value is not None and value != PROOF_FORMAT:
        raise BadDocument(f"{what} has format {value!r}; this auditor reads only {PROOF_FORMAT!r}")


class OnChainEvent(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def root(self) -> bytes: ...
    @property
    def prev_root(self) -> bytes: ...
    @property
    def leaf_count(self) -> int: ...
    @property
    def tx_hash(self) -> str: ...


@dataclass
class BatchClaim:
    """What the node claims about one anchored batch, with the records it says the batch holds."""

    seq: int
    root: str
    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    leaf_count: int
    records: list[dict[str, Any]] = field(default_factory=list)
    leaf_indexes: list[int] = field(default_factory=list)
    claimed_leaves: list[str] = field(default_factory=list)
    proofs: list[list[ProofStep]] | None = None


@dataclass
class AuditInput:
    kind: str
    member: str
    batches: list[BatchClaim]
    pending: list[dict[str, Any]]


@dataclass(frozen=True)
class Finding:
    problem: str
    record_seq: int | None = None
    batch_seq: int | None = None

    def __str__(self) -> str:
        where = []
        if self.record_seq is not None:
            where.append(f"record {self.record_seq}")
        if self.batch_seq is not None:
            where.append(f"batch {self.batch_seq}")
        return f"{', '.join(where) or 'history'}: {self.problem}"


@dataclass
class AuditReport:
    kind: str
    member: str
    records_verified: int = 0
    batches_verified: int = 0
    pending: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "kind": self.kind,
            "member": self.member,
            "records_verified": self.records_verified,
            "batches_verified": self.batches_verified,
            "pending": self.pending,
            "findings": [
                {"record_seq": f.record_seq, "batch_seq": f.batch_seq, "problem": f.problem} for f in self.findings
            ],
        }


def group_documents(kind: str, member: str, documents: Iterable[Mapping[str, Any]]) -> AuditInput:
    """Turn proof documents (docs/proof-format.md) into per-batch claims."""
    batches: dict[int, BatchClaim] = {}
    pending: list[dict[str, Any]] = []
    for doc in documents:
        try:
            record = dict(doc["record"])
            fmt = doc.get("format")
            if fmt is not None and fmt != PROOF_FORMAT:
                check_format(fmt, f"proof document of record {record.get('seq')}")
            anchor = doc.get("anchor")
            if anchor is None:
                pending.append(record)
                continue
            seq = int(anchor["seq"])
            claim = batches.get(seq)
            if claim is None:
                claim = batches[seq] = BatchClaim(
                    seq=seq,
                    root=str(doc["root"]),
                    chain_id=int(anchor["chain_id"]),
                    contract=str(anchor["contract"]),
                    tx_hash=str(anchor["tx_hash"]),
                    block_number=int(anchor["block_number"]),
                    leaf_count=int(anchor["leaf_count"]),
                    proofs=[],
                )
            claim.records.append(record)
            claim.leaf_indexes.append(int(anchor["leaf_index"]))
            claim.claimed_leaves.append(str(doc["leaf"]))
            assert claim.proofs is not None
            claim.proofs.append(list(doc["proof"]))
        except BadDocument:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise BadDocument(f"malformed proof document: {exc!r}") from exc
    return AuditInput(kind, member, [batches[s] for s in sorted(batches)], pending)


def verify(
    audit: AuditInput,
    events: Sequence[OnChainEvent],
    chain_id: int,
    contract: str,
    check_paths: bool = False,
) -> AuditReport:
    """Check every claim against the chain's Anchored events of (member, kind).

    `events` are read by the caller straight from the chain (the contract's logs); `chain_id` and
    `contract` are what the auditor trusts, not what the node wrote in its documents.
    """
    report = AuditReport(audit.kind, audit.member)
    on_chain = {e.seq: e for e in events}
    expected_record_seq = 1
    previous_root = ZERO_ROOT_HEX

    for expected_batch, claim in enumerate(audit.batches, start=1):
        problems = report.findings
        if claim.seq != expected_batch:
            problems.append(Finding(f"batch sequence gap: expected {expected_batch}", batch_seq=claim.seq))
        leaves: list[bytes] = []
        for i, record in enumerate(claim.records):
            rseq = record.get("seq")
            if rseq != expected_record_seq:
                problems.append(Finding(f"record sequence gap: expected {expected_record_seq}", rseq, claim.seq))
            expected_record_seq = (rseq if isinstance(rseq, int) else expected_record_seq) + 1
            if record.get("kind") != audit.kind or str(record.get("node", "")).lower() != audit.member.lower():
                problems.append(Finding("record belongs to another kind or node", rseq, claim.seq))
            if claim.leaf_indexes[i] != i:
                problems.append(Finding(f"leaf index {claim.leaf_indexes[i]} where {i} was due", rseq, claim.seq))
            try:
                leaf = leaf_hash_fast(record)
            except NotCanonicalizable as exc:
                problems.append(Finding(f"record cannot be hashed: {exc}", rseq, claim.seq))
                leaf = b""
            leaves.append(leaf)
            if claim.claimed_leaves and claim.claimed_leaves[i] != leaf.hex():
                problems.append(Finding("record content does not match its anchored leaf", rseq, claim.seq))
            if check_paths and claim.proofs is not None:
                try:
                    folded = fold_proof(leaf, claim.proofs[i]).hex()
                except (ValueError, TypeError) as exc:
                    folded = f"malformed proof ({exc})"
                if folded != claim.root:
                    problems.append(Finding("proof path does not lead to the batch root", rseq, claim.seq))
                elif sides_of(claim.proofs[i]) != path_sides(i, len(claim.records)):
                    problems.append(Finding(f"proof path is not the path of leaf {i}", rseq, claim.seq))

        event = on_chain.get(claim.seq)
        recomputed = merkle_root(leaves).hex() if leaves else ""
        if event is None:
            problems.append(Finding("no Anchored event on chain for this batch", batch_seq=claim.seq))
        else:
            if event.root.hex() != recomputed:
                problems.append(
                    Finding(
                        f"root recomputed from the records ({recomputed}) is not the anchored root "
                        f"({event.root.hex()}): a record was altered, added or removed",
                        batch_seq=claim.seq,
                    )
                )
            if event.leaf_count != len(claim.records) or claim.leaf_count != event.leaf_count:
                problems.append(
                    Finding(
                        f"batch holds {len(claim.records)} records, the chain says {event.leaf_count}",
                        batch_seq=claim.seq,
                    )
                )
            if event.tx_hash.lower() != claim.tx_hash.lower():
                problems.append(Finding(f"anchored in {event.tx_hash}, not in {claim.tx_hash}", batch_seq=claim.seq))
            if event.prev_root.hex() != previous_root:
                problems.append(Finding("anchor does not chain to the previous batch's root", batch_seq=claim.seq))
            previous_root = event.root.hex()
        if claim.root != recomputed:
            problems.append(Finding("the document's root is not the root of its records", batch_seq=claim.seq))
        if claim.chain_id != chain_id:
            problems.append(
                Finding(f"document names chain {claim.chain_id}, audited chain is {chain_id}", batch_seq=claim.seq)
            )
        if claim.contract.lower() != contract.lower():
            problems.append(
                Finding(f"document names contract {claim.contract}, expected {contract}", batch_seq=claim.seq)
            )
        report.batches_verified += 1
        report.records_verified += len(claim.records)

    shown = {c.seq for c in audit.batches}
    for seq in sorted(set(on_chain) - shown):
        report.findings.append(Finding("anchored on chain but missing from the node's documents", batch_seq=seq))
    for record in audit.pending:
        rseq = record.get("seq")
        if rseq != expected_record_seq:
            report.findings.append(Finding(f"record sequence gap: expected {expected_record_seq}", rseq))
        expected_record_seq = (rseq if isinstance(rseq, int) else expected_record_seq) + 1
    report.pending = len(audit.pending)
    return report
