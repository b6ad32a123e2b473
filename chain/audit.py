"""The auditor's checks, as pure logic over claimed documents and facts read from the chain.

Nothing a node says about the chain is believed: leaves are recomputed from records, each batch's root
is recomputed from its leaves, and roots, leaf counts and transactions are compared with the anchor
contract's own events. docs/proof-format.md describes every check so another verifier can repeat it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from chain.canonical import LEAF_PREFIX, leaf_hash_fast
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


@dataclass
class BatchDigest:
    """What one batch's records amount to for `verify`, computed without the rest of the history.

    A batch's records are checked on their own (leaves, Merkle root, kind and node, leaf indexes, paths);
    only the sequence check carries from one batch to the next, so the records' `seq`s are kept, as a
    range when they run consecutively (an honest batch: a few bytes instead of one object per record).
    That lets an export be digested batch by batch, in other processes, and folded in order afterwards.
    """

    count: int
    root: str  # recomputed from the records' leaves (hex); "" for a batch without records
    seqs: range | list[Any]
    findings: list[tuple[int, Finding]] = field(default_factory=list)  # by record index; not sequence gaps


def seq_digest(records: Sequence[Mapping[str, Any]]) -> range | list[Any]:
    """The records' `seq` values: a range when they are consecutive integers, else the values themselves.

    The type test keeps the range exact: `True == 1` and `2.0 == 2` in Python, and such a value must keep
    being named as itself in a finding.
    """
    seqs: list[Any] = [r.get("seq") for r in records]
    if seqs and set(map(type, seqs)) == {int}:
        run = range(seqs[0], seqs[0] + len(seqs))
        if seqs == list(run):
            return run
    return seqs


_SORTED = orjson.OPT_SORT_KEYS


def _leaves(records: Sequence[dict[str, Any]]) -> list[bytes] | None:
    """Every record's leaf in one comprehension (the hot loop of an audit), or None if some record needs the
    careful per-record path (an integer beyond 64 bits, a lone surrogate, a key that is not a string)."""
    sha, dumps = hashlib.sha256, orjson.dumps
    try:
        return [sha(LEAF_PREFIX + dumps(r, option=_SORTED)).digest() for r in records]
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None


def digest_batch(kind: str, member: str, claim: BatchClaim, check_paths: bool = False) -> BatchDigest:
    """Check one batch's records on their own (docs/proof-format.md section 6, steps 1 and 3 and the paths).

    Findings come out in the order `verify` has always reported them: by record, and for one record kind
    or node, leaf index, hashing, claimed leaf, path.
    """
    records = claim.records
    n = len(records)
    seqs = seq_digest(records)
    found: list[tuple[int, int, Finding]] = []
    member_lower = member.lower()
    # The exact address first: lower-casing a million addresses costs more than comparing them.
    foreign = [
        i
        for i, r in enumerate(records)
        if r.get("kind") != kind or ((node := r.get("node", "")) != member and str(node).lower() != member_lower)
    ]
    found += [(i, 0, Finding("record belongs to another kind or node", seqs[i], claim.seq)) for i in foreign]
    if claim.leaf_indexes != list(range(n)):
        for i in range(n):
            if claim.leaf_indexes[i] != i:
                found.append(
                    (i, 1, Finding(f"leaf index {claim.leaf_indexes[i]} where {i} was due", seqs[i], claim.seq))
                )

    leaves = _leaves(records)
    if leaves is None:
        leaves = []
        for i, record in enumerate(records):
            try:
                leaf = leaf_hash_fast(record)
            except NotCanonicalizable as exc:
                found.append((i, 2, Finding(f"record cannot be hashed: {exc}", seqs[i], claim.seq)))
                leaf = b""
            leaves.append(leaf)
    if claim.claimed_leaves:
        for i, leaf in enumerate(leaves):
            if claim.claimed_leaves[i] != leaf.hex():
                found.append((i, 3, Finding("record content does not match its anchored leaf", seqs[i], claim.seq)))
    if check_paths and claim.proofs is not None:
        for i, leaf in enumerate(leaves):
            try:
                folded = fold_proof(leaf, claim.proofs[i]).hex()
            except (ValueError, TypeError) as exc:
                folded = f"malformed proof ({exc})"
            if folded != claim.root:
                found.append((i, 4, Finding("proof path does not lead to the batch root", seqs[i], claim.seq)))
            elif sides_of(claim.proofs[i]) != path_sides(i, n):
                found.append((i, 4, Finding(f"proof path is not the path of leaf {i}", seqs[i], claim.seq)))
    found.sort(key=lambda f: (f[0], f[1]))
    return BatchDigest(n, merkle_root(leaves).hex() if leaves else "", seqs, [(i, f) for i, _, f in found])


class _Sequence:
    """The gapless-sequence check (step 2), carried across batches and then the pending records."""

    def __init__(self) -> None:
        self.expected = 1

    def gaps(self, seqs: range | list[Any], batch_seq: int | None) -> list[tuple[int, Finding]]:
        out: list[tuple[int, Finding]] = []
        if isinstance(seqs, range):  # consecutive integers: only the first can break the run
            if seqs and seqs.start != self.expected:
                out.append((0, Finding(f"record sequence gap: expected {self.expected}", seqs.start, batch_seq)))
            if seqs:
                self.expected = seqs.stop
            return out
        for i, rseq in enumerate(seqs):
            if rseq != self.expected:
                out.append((i, Finding(f"record sequence gap: expected {self.expected}", rseq, batch_seq)))
            self.expected = (rseq if isinstance(rseq, int) else self.expected) + 1
        return out


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
    digested = ((claim, digest_batch(audit.kind, audit.member, claim, check_paths)) for claim in audit.batches)
    return verify_digests(audit.kind, audit.member, digested, [seq_digest(audit.pending)], events, chain_id, contract)


def _event_findings(claim: BatchClaim, digest: BatchDigest, event: OnChainEvent, previous_root: str) -> list[Finding]:
    """What the batch's Anchored event contradicts: the root and the size of the records, the transaction the
    node names, and the link to the previous batch's anchored root (`previous_root`, hex)."""
    problems: list[Finding] = []
    if event.root.hex() != digest.root:
        problems.append(
            Finding(
                f"root recomputed from the records ({digest.root}) is not the anchored root "
                f"({event.root.hex()}): a record was altered, added or removed",
                batch_seq=claim.seq,
            )
        )
    if event.leaf_count != digest.count or claim.leaf_count != event.leaf_count:
        problems.append(
            Finding(f"batch holds {digest.count} records, the chain says {event.leaf_count}", batch_seq=claim.seq)
        )
    if event.tx_hash.lower() != claim.tx_hash.lower():
        problems.append(Finding(f"anchored in {event.tx_hash}, not in {claim.tx_hash}", batch_seq=claim.seq))
    if event.prev_root.hex() != previous_root:
        problems.append(Finding("anchor does not chain to the previous batch's root", batch_seq=claim.seq))
    return problems


def _document_findings(claim: BatchClaim, digest: BatchDigest, chain_id: int, contract: str) -> list[Finding]:
    """What the node's documents of a batch claim wrongly: a root that is not its records', or another chain
    or contract than the audited ones."""
    problems: list[Finding] = []
    if claim.root != digest.root:
        problems.append(Finding("the document's root is not the root of its records", batch_seq=claim.seq))
    if claim.chain_id != chain_id:
        problems.append(
            Finding(f"document names chain {claim.chain_id}, audited chain is {chain_id}", batch_seq=claim.seq)
        )
    if claim.contract.lower() != contract.lower():
        problems.append(Finding(f"document names contract {claim.contract}, expected {contract}", batch_seq=claim.seq))
    return problems


def verify_digests(
    kind: str,
    member: str,
    batches: Iterable[tuple[BatchClaim, BatchDigest]],
    pending: Iterable[range | list[Any]],
    events: Sequence[OnChainEvent],
    chain_id: int,
    contract: str,
) -> AuditReport:
    """`verify` over batches already digested (`digest_batch`), in the order the node gave them.

    `batches` may be a stream: each is folded as it comes, so only the digests' findings are kept. The
    claims' own `records` are not read here (a digested claim may carry none).
    """
    report = AuditReport(kind, member)
    on_chain = {e.seq: e for e in events}
    sequence = _Sequence()
    previous_root = ZERO_ROOT_HEX
    shown: set[int] = set()

    for expected_batch, (claim, digest) in enumerate(batches, start=1):
        shown.add(claim.seq)
        problems = report.findings
        if claim.seq != expected_batch:
            problems.append(Finding(f"batch sequence gap: expected {expected_batch}", batch_seq=claim.seq))
        gaps = sequence.gaps(digest.seqs, claim.seq)
        if gaps or digest.findings:
            # A record's sequence gap is reported before its other findings (sort is stable).
            problems.extend(f for _, f in sorted(gaps + digest.findings, key=lambda t: t[0]))
        event = on_chain.get(claim.seq)
        if event is None:
            problems.append(Finding("no Anchored event on chain for this batch", batch_seq=claim.seq))
        else:
            problems.extend(_event_findings(claim, digest, event, previous_root))
            previous_root = event.root.hex()
        problems.extend(_document_findings(claim, digest, chain_id, contract))
        report.batches_verified += 1
        report.records_verified += digest.count

    for seq in sorted(set(on_chain) - shown):
        report.findings.append(Finding("anchored on chain but missing from the node's documents", batch_seq=seq))
    for seqs in pending:
        report.findings.extend(f for _, f in sequence.gaps(seqs, None))
        report.pending += len(seqs)
    return report
