"""The anchoring service: batches a node's unanchored records into Merkle trees and anchors each root.

Crash and outage safety comes from doing things in this order:
1. form a batch in one database transaction (its seq, previous root, root and every record's proof);
2. before sending, ask the chain whether that seq is already anchored (a crash after sending, before
   recording the receipt) and, if so, record where instead of sending again;
3. send one transaction per batch; on success record the receipt.
A formed batch is never changed, only marked anchored, so a restart resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert
from sqlmodel import col, select

from chain.anchor_client import ZERO_ROOT, AnchorRejected, AnchorWriter, ChainUnavailable
from chain.merkle import MerkleTree
from chain.records import RecordKind
from node.domain.states import BatchStatus
from node.domain.times import utc_now_iso
from node.errors import ChainHistoryMismatch
from node.store.engine import session_scope
from node.store.tables import AnchorBatch, Record, RecordProof

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnchorPolicy:
    batch_size: int
    interval_seconds: float
    max_leaves: int


def waiting_records(engine: Engine, kind: str) -> tuple[int, str | None]:
    """How many records of `kind` are in no batch yet, and when the oldest of them was written."""
    with session_scope(engine) as s:
        last = s.exec(select(func.max(AnchorBatch.last_record_seq)).where(AnchorBatch.kind == kind)).one()
        after = int(last or 0)
        count, oldest = s.exec(
            select(func.count(), func.min(Record.at)).where(Record.kind == kind, Record.seq > after)
        ).one()
        return int(count), oldest


def form_batch(engine: Engine, kind: str, max_leaves: int) -> AnchorBatch | None:
    """Put the next run of unbatched records of `kind` into a new batch; None if nothing waits."""
    with session_scope(engine) as s:
        prev = s.exec(
            select(AnchorBatch).where(AnchorBatch.kind == kind).order_by(col(AnchorBatch.seq).desc()).limit(1)
        ).first()
        after = prev.last_record_seq if prev else 0
        rows = s.exec(
            select(Record.id, Record.seq, Record.leaf)
            .where(Record.kind == kind, Record.seq > after)
            .order_by(col(Record.seq))
            .limit(max_leaves)
        ).all()
        if not rows:
            return None
        tree = MerkleTree([bytes.fromhex(leaf) for _, _, leaf in rows])
        batch = AnchorBatch(
            kind=kind,
            seq=(prev.seq + 1) if prev else 1,
            root=tree.root.hex(),
            prev_root=prev.root if prev else ZERO_ROOT.hex(),
            leaf_count=len(rows),
            first_record_seq=rows[0][1],
            last_record_seq=rows[-1][1],
            formed_at=utc_now_iso(),
        )
        s.add(batch)
        s.flush()
        assert batch.id is not None
        proofs = [
            {"record_id": rid, "batch_id": batch.id, "leaf_index": i, "proof": json.dumps(tree.proof(i))}
            for i, (rid, _, _) in enumerate(rows)
        ]
        s.execute(insert(RecordProof), proofs)
        return batch


def pending_batches(engine: Engine, kind: str | None = None) -> list[AnchorBatch]:
    with session_scope(engine) as s:
        q = select(AnchorBatch).where(AnchorBatch.status == BatchStatus.FORMED)
        if kind is not None:
            q = q.where(AnchorBatch.kind == kind)
        return list(s.exec(q.order_by(col(AnchorBatch.kind), col(AnchorBatch.seq))).all())


def send_batch(engine: Engine, writer: AnchorWriter, batch: AnchorBatch) -> AnchorBatch:
    """Anchor `batch` on-chain exactly once, or record where it already was."""
    on_chain_seq = writer.last_seq(writer.member, batch.kind)
    if on_chain_seq >= batch.seq:
        existing = writer.get_anchor(writer.member, batch.kind, batch.seq)
        if existing is None or existing.root.hex() != batch.root:
            raise ChainHistoryMismatch(
                f"{batch.kind} seq {batch.seq}: chain holds "
                f"{existing.root.hex() if existing else 'nothing'}, this node formed {batch.root}"
            )
        receipt = writer.find_anchor_receipt(writer.member, batch.kind, batch.seq)
        if receipt is None:
            raise ChainHistoryMismatch(f"{batch.kind} seq {batch.seq} is stored but its event is missing")
        log.info("batch %s/%s was already anchored in %s; recording it", batch.kind, batch.seq, receipt.tx_hash)
    elif on_chain_seq == batch.seq - 1:
        receipt = writer.anchor(
            batch.kind, batch.seq, bytes.fromhex(batch.root), bytes.fromhex(batch.prev_root), batch.leaf_count
        )
    else:
        raise ChainHistoryMismatch(
            f"{batch.kind}: chain is at seq {on_chain_seq} but this node's next batch is {batch.seq}"
        )
    with session_scope(engine) as s:
        row = s.get(AnchorBatch, batch.id)
        assert row is not None
        row.status = BatchStatus.ANCHORED
        row.chain_id = writer.chain_id
        row.contract = writer.address
        row.tx_hash = receipt.tx_hash
        row.block_number = receipt.block_number
        row.anchored_at = utc_now_iso()
        s.add(row)
    log.info(
        "anchored %s batch %s: %s leaves, root %s, tx %s, block %s",
        row.kind,
        row.seq,
        row.leaf_count,
        row.root,
        row.tx_hash,
        row.block_number,
    )
    return row


def return_lost_batches(engine: Engine, kind: str, chain_last: int) -> list[int]:
    """Batches recorded as anchored that the chain no longer holds (their seq is past the chain's last: a reorg,
    or a chain restored from an older state) go back to 'formed', to be anchored again exactly as they were
    formed: same seq, root and previous root, so every proof already handed out stays valid."""
    with session_scope(engine) as s:
        lost = s.exec(
            select(AnchorBatch)
            .where(AnchorBatch.kind == kind, AnchorBatch.status == BatchStatus.ANCHORED, AnchorBatch.seq > chain_last)
            .order_by(col(AnchorBatch.seq))
        ).all()
        for batch in lost:
            batch.status = BatchStatus.FORMED
            batch.tx_hash, batch.block_number, batch.anchored_at = None, None, None
            s.add(batch)
        return [b.seq for b in lost]


def unconfirmed_batches(engine: Engine, reader: AnchorWriter, kind: str, head: int, confirmations: int) -> int:
    """Anchored batches fewer than `confirmations` blocks deep, each checked against the chain again (a reorg
    may have moved it to another block): how many are not final yet."""
    with session_scope(engine) as s:
        recent = s.exec(
            select(AnchorBatch).where(
                AnchorBatch.kind == kind,
                AnchorBatch.status == BatchStatus.ANCHORED,
                col(AnchorBatch.block_number) > head - confirmations,
            )
        ).all()
        for batch in recent:
            held = reader.get_anchor(reader.member, kind, batch.seq)
            if held is None or held.root.hex() != batch.root:
                raise ChainHistoryMismatch(f"{kind} seq {batch.seq}: the chain holds another root or none")
            if held.block_number != batch.block_number:
                batch.block_number = held.block_number
                s.add(batch)
        return sum(1 for b in recent if (b.block_number or 0) > head - confirmations)


def _age_seconds(iso: str) -> float:
    then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - then).total_seconds()


class AnchoringService:
    """Runs in a background thread of the node process; also drivable step by step from tests."""

    def __init__(
        self,
        engine: Engine,
        writer_factory: Callable[[], AnchorWriter],
        policy: AnchorPolicy,
        kinds: tuple[str, ...] = (RecordKind.LEDGER,),
        retry_max_seconds: float = 10.0,
        confirmations: int = 0,
    ) -> None:
        self.engine = engine
        self.writer_factory = writer_factory
        self.policy = policy
        self.kinds = kinds
        self.retry_max_seconds = retry_max_seconds
        self._writer: AnchorWriter | None = None
        # The background thread and an operator's flush must not form or send batches at the same time.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        # An anchor is final `confirmations` blocks deep (0 on Anvil); until then it is checked again each step.
        self.confirmations = confirmations
        self.unconfirmed = 0
        # (kind, seq) the chain lost, not yet anchored again; replaced, never mutated, so /health reads it whole.
        self.reanchoring: frozenset[tuple[str, int]] = frozenset()
        self._reconciled_at = float("-inf")  # monotonic time of the last comparison with the chain
        # Monotonic time each kind's last batch was formed. A record arriving on an idle node is anchored at
        # once; under load, batches are at least `interval_seconds` apart (or full): latency when it is cheap,
        # at most one transaction per interval and kind when it is not.
        self._last_formed: dict[str, float] = {}
        self._written_since_wake: dict[str, int] = {}
        self._next_due: float | None = None  # monotonic time records waiting now become due

    def writer(self) -> AnchorWriter:
        if self._writer is None:
            self._writer = self.writer_factory()
        return self._writer

    def step(self, force: bool = False) -> int:
        """Send what is formed, then form and send new batches that are due. Returns batches anchored."""
        with self._lock:
            return self._step(force)

    @property
    def degraded(self) -> bool:
        """Something anchored is not final yet, or the chain lost an anchor this node is anchoring again."""
        return bool(self.unconfirmed or self.reanchoring)

    def _reconcile(self, kind: str) -> None:
        writer = self.writer()
        lost = return_lost_batches(self.engine, kind, writer.last_seq(writer.member, kind))
        if lost:
            log.warning(
                "the chain no longer holds %s batches %s (a reorg, or a chain restored from an older state): "
                "anchoring them again as formed",
                kind,
                lost,
            )
            self.reanchoring = self.reanchoring | {(kind, seq) for seq in lost}

    def _step(self, force: bool) -> int:
        anchored = 0
        # Under a write load the thread steps after every record: the chain is asked for its last seq (one
        # eth_call per kind) before anything is sent, and otherwise at most once per interval.
        periodic = force or time.monotonic() - self._reconciled_at >= min(self.policy.interval_seconds, 1.0)
        if periodic:
            self._reconciled_at = time.monotonic()
        for kind in self.kinds:
            if periodic:
                self._reconcile(kind)
            batches = pending_batches(self.engine, kind)
            if batches or self._due(kind, force):
                if not periodic:
                    self._reconcile(kind)
                    batches = pending_batches(self.engine, kind)
                anchored += self._send(kind, batches, force)
        if self.confirmations and (periodic or anchored):
            self._confirm()
        return anchored

    def _idle_for_an_interval(self, kind: str) -> bool:
        return time.monotonic() - self._last_formed.get(kind, float("-inf")) >= self.policy.interval_seconds

    def _due(self, kind: str, force: bool) -> bool:
        count, oldest = waiting_records(self.engine, kind)
        due = bool(count) and (
            force
            or count >= self.policy.batch_size
            or self._idle_for_an_interval(kind)
            or (oldest is not None and _age_seconds(oldest) >= self.policy.interval_seconds)
        )
        if count and not due:  # the thread wakes when they are due, not at its next tick
            at = self._last_formed.get(kind, float("-inf")) + self.policy.interval_seconds
            self._next_due = min(self._next_due or at, at)
        return due

    def _send(self, kind: str, batches: list[AnchorBatch], force: bool) -> int:
        """The formed batches in order, then new batches while records are due."""
        for batch in batches:
            send_batch(self.engine, self.writer(), batch)
            self.reanchoring = self.reanchoring - {(kind, batch.seq)}
        sent = len(batches)
        while self._due(kind, force):
            formed = form_batch(self.engine, kind, self.policy.max_leaves)
            if formed is None:
                break
            self._last_formed[kind] = time.monotonic()
            send_batch(self.engine, self.writer(), formed)
            sent += 1
        return sent

    def _confirm(self) -> None:
        """Recount the anchors not final yet, each checked on the chain again."""
        writer = self.writer()
        head = int(writer.w3.eth.block_number)
        self.unconfirmed = sum(
            unconfirmed_batches(self.engine, writer, kind, head, self.confirmations) for kind in self.kinds
        )

    def written(self, records: dict[str, int]) -> None:
        """Records were committed, so many of each kind (node/store/records.py tells): wake up if they may be due
        now, that is if they may fill a batch or their kind formed no batch for an interval; otherwise the next
        tick takes them. Called on the writer's thread: it only counts and sets an event."""
        wake = False
        for kind, n in records.items():
            waiting = self._written_since_wake.get(kind, 0) + n
            self._written_since_wake[kind] = waiting
            wake = wake or waiting >= self.policy.batch_size or self._idle_for_an_interval(kind)
        if wake:
            self._written_since_wake = {}
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="anchoring", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            try:
                self.step()
                if self.last_error is not None:
                    log.info("anchoring resumed after: %s", self.last_error)
                self.last_error = None
                delay = 0.0
                wait = min(self.policy.interval_seconds / 2, 1.0)
                if self._next_due is not None:
                    wait = max(0.0, min(wait, self._next_due - time.monotonic()))
                    self._next_due = None
            except (ChainUnavailable, AnchorRejected) as exc:
                # Outage or a race with our own earlier transaction: back off; the next step asks the
                # chain first, so nothing is sent twice.
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._writer = None
                delay = min(max(delay * 2, 0.25), self.retry_max_seconds)
                wait = delay
                log.warning("anchoring paused %.2fs: %s", delay, self.last_error)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(max(delay * 2, 1.0), self.retry_max_seconds)
                wait = delay
                log.exception("anchoring failed")
            self._wake.wait(wait)
            self._wake.clear()
