"""The auditor split into per-batch digests folded in order (chain.audit.digest_batch / verify_digests) and the
streaming export reader (chain.auditor.digest_export) give exactly the report the one-pass verifier gave: the
same findings, in the same order, for honest histories and for every kind of tampering, with one worker or
several."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from chain import auditor
from chain.audit import (
    ZERO_ROOT_HEX,
    AuditInput,
    AuditReport,
    BatchClaim,
    Finding,
    OnChainEvent,
    verify,
    verify_digests,
)
from chain.auditor import Source, digest_export, read_export, write_export
from chain.canonical import NotCanonicalizable, leaf_hash, leaf_hash_fast
from chain.errors import AuditSourceError
from chain.merkle import MerkleTree, fold_proof, merkle_root, path_sides, sides_of
from tests.helpers.events import Event

NODE = "0x00000000000000000000000000000000000000aA"
CONTRACT = "0x00000000000000000000000000000000000000CC"
CHAIN_ID = 31337


def reference_verify(
    audit: AuditInput,
    events: Sequence[OnChainEvent],
    chain_id: int,
    contract: str,
    check_paths: bool = False,
) -> AuditReport:
    """chain.audit.verify as it was before batches were digested on their own, kept verbatim as the oracle."""
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


def make_records(first: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "ledger",
            "node": NODE,
            "seq": s,
            "type": "receipt" if s % 2 else "issue",
            "at": f"2026-11-25T00:00:00.{s:06d}Z",
            "lines": [{"sku": f"S{s % 7}", "quantity": s if s % 2 else -s, "memo": "\u00e9\n"}],
            "corrects": None,
        }
        for s in range(first, first + n)
    ]


SIZES = (3, 5, 1, 8, 4)


def history() -> tuple[AuditInput, list[Event]]:
    batches, events, prev, first = [], [], b"\x00" * 32, 1
    for k, n in enumerate(SIZES, start=1):
        recs = make_records(first, n)
        first += n
        tree = MerkleTree([leaf_hash(r) for r in recs])
        tx = f"0x{k:064x}"
        proofs = [tree.proof(i) for i in range(n)]
        leaves = [leaf_hash(r).hex() for r in recs]
        batches.append(
            BatchClaim(k, tree.root.hex(), CHAIN_ID, CONTRACT, tx, k, n, recs, list(range(n)), leaves, proofs)
        )
        events.append(Event(k, tree.root, prev, n, tx))
        prev = tree.root
    return AuditInput("ledger", NODE, batches, make_records(first, 3)), events


def _record(audit: AuditInput, rng: random.Random) -> dict[str, Any]:
    """A record of some batch (or a pending one, once tamperings have emptied every batch)."""
    held = [c.records for c in audit.batches if c.records] or [audit.pending or [{}]]
    return rng.choice(rng.choice(held))


# Each changes one thing a dishonest node or a damaged file could change.
TAMPERINGS: list[Callable[[AuditInput, list[Event], random.Random], object]] = [
    lambda a, e, r: _record(a, r).update(memo="edited"),
    lambda a, e, r: _record(a, r).update(seq=True),
    lambda a, e, r: _record(a, r).update(seq=2.0),
    lambda a, e, r: _record(a, r).update(seq=None),
    lambda a, e, r: _record(a, r).update(seq="7"),
    lambda a, e, r: _record(a, r).update(seq=r.randint(-3, 30)),
    lambda a, e, r: _record(a, r).update(kind="other"),
    lambda a, e, r: _record(a, r).update(node=NODE.upper().replace("0X", "0x")),
    lambda a, e, r: _record(a, r).update(node="0x" + "11" * 20),
    lambda a, e, r: _record(a, r).pop("node"),
    lambda a, e, r: _record(a, r).update(quantity=2**70),
    lambda a, e, r: _record(a, r).update(price=1.5),
    lambda a, e, r: _record(a, r).update(memo="\ud800"),
    lambda a, e, r: _record(a, r).update({"1": {3: 4}}),
    lambda a, e, r: r.choice(a.batches).records.pop(),
    lambda a, e, r: r.choice(a.batches).records.append(copy.deepcopy(_record(a, r))),
    lambda a, e, r: r.shuffle(r.choice(a.batches).records),
    lambda a, e, r: r.shuffle(a.batches),
    lambda a, e, r: a.batches.pop(r.randrange(len(a.batches))),
    lambda a, e, r: e.pop(r.randrange(len(e))),
    lambda a, e, r: setattr(r.choice(a.batches), "seq", r.randint(0, 7)),
    lambda a, e, r: setattr(r.choice(a.batches), "tx_hash", "0x" + "ee" * 32),
    lambda a, e, r: setattr(r.choice(a.batches), "root", "ab" * 32),
    lambda a, e, r: setattr(r.choice(a.batches), "leaf_count", 99),
    lambda a, e, r: setattr(r.choice(a.batches), "chain_id", 1),
    lambda a, e, r: setattr(r.choice(a.batches), "contract", CONTRACT.lower()),
    lambda a, e, r: setattr(r.choice(a.batches), "contract", "0x" + "dd" * 20),
    lambda a, e, r: r.shuffle(r.choice(a.batches).leaf_indexes),
    lambda a, e, r: r.choice(a.batches).claimed_leaves.__setitem__(0, "00" * 32),
    lambda a, e, r: r.shuffle(r.choice(a.batches).proofs or []),
    lambda a, e, r: (r.choice(a.batches).proofs or [[]])[0].append({"up": "00"}),  # type: ignore[dict-item]
    lambda a, e, r: (r.choice(a.batches).proofs or [[]])[0].append({"left": "zz"}),
    lambda a, e, r: a.pending.pop(0),
    lambda a, e, r: a.pending[-1].update(seq=99),
    lambda a, e, r: a.pending.insert(0, copy.deepcopy(a.batches[0].records[0])),
]


def tampered(seed: int) -> tuple[AuditInput, list[Event]]:
    rng = random.Random(seed)
    audit, events = history()
    for change in rng.sample(TAMPERINGS, rng.choice((1, 1, 2, 3))):
        change(audit, events, rng)
    for claim in audit.batches:  # keep the per-record lists as long as the records (the node's documents do)
        n = len(claim.records)
        claim.leaf_indexes = (claim.leaf_indexes + list(range(n)))[:n]
        claim.claimed_leaves = (claim.claimed_leaves + ["00" * 32] * n)[:n]
        claim.proofs = ((claim.proofs or []) + [[]] * n)[:n]
    return audit, events


def test_an_honest_history_gives_the_reference_report() -> None:
    audit, events = history()
    for check_paths in (False, True):
        expected = reference_verify(copy.deepcopy(audit), events, CHAIN_ID, CONTRACT, check_paths)
        assert expected.ok
        assert verify(audit, events, CHAIN_ID, CONTRACT, check_paths).as_dict() == expected.as_dict()


@pytest.mark.parametrize("seed", range(300))
def test_every_tampering_gives_the_reference_report(seed: int) -> None:
    audit, events = tampered(seed)
    for check_paths in (False, True):
        expected = reference_verify(copy.deepcopy(audit), events, CHAIN_ID, CONTRACT, check_paths)
        got = verify(copy.deepcopy(audit), events, CHAIN_ID, CONTRACT, check_paths)
        assert got.as_dict() == expected.as_dict()


def test_the_tamperings_are_caught() -> None:
    caught = sum(not reference_verify(*tampered(seed), CHAIN_ID, CONTRACT, True).ok for seed in range(300))
    assert caught >= 290  # a few draws undo themselves (a shuffle of one record, the same seq drawn again)


def _export(tmp_path: Path, audit: AuditInput, name: str = "export.jsonl") -> Path:
    path = tmp_path / name
    write_export(Source(audit, "http://node", None, CONTRACT), path)
    return path


def _streamed(path: Path, events: Sequence[OnChainEvent], workers: int) -> AuditReport:
    d = digest_export(path, workers)
    return verify_digests(d.kind, d.member, d.batches, d.pending, events, CHAIN_ID, CONTRACT)


def _read_whole(path: Path, events: Sequence[OnChainEvent]) -> AuditReport:
    return reference_verify(read_export(path).audit, events, CHAIN_ID, CONTRACT)


@pytest.fixture(params=[1, 2], ids=["inline", "two-workers"])
def workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    # Tiny tasks, so that even these small files are split over several tasks (and workers).
    monkeypatch.setattr(auditor, "_TASK_BYTES", 700)
    return int(request.param)


def test_a_streamed_export_gives_the_report_of_the_whole_file(tmp_path: Path, workers: int) -> None:
    audit, events = history()
    path = _export(tmp_path, audit)
    expected = _read_whole(path, events)
    assert expected.ok and expected.records_verified == sum(SIZES) and expected.pending == 3
    assert _streamed(path, events, workers).as_dict() == expected.as_dict()


@pytest.mark.parametrize("seed", range(0, 300, 7))
def test_a_tampered_streamed_export_gives_the_report_of_the_whole_file(tmp_path: Path, workers: int, seed: int) -> None:
    audit, events = tampered(seed)
    for claim in audit.batches:  # an export holds neither leaves nor paths
        claim.claimed_leaves, claim.proofs = [], None
    try:
        path = _export(tmp_path, audit)
    except TypeError:  # orjson writes no integer beyond 64 bits and no lone surrogate: no such export exists
        return
    assert _streamed(path, events, workers).as_dict() == _read_whole(path, events).as_dict()


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


@pytest.mark.parametrize(
    "edit",
    [
        lambda lines: [*lines[:2], b"{not json", *lines[2:]],
        lambda lines: [*lines[:2], b"", *lines[2:]],
        lambda lines: [*lines[:3], b'{"batch": {"seq": 1}, "records": []}', *lines[3:]],
        lambda lines: [*lines[:3], b'{"records": []}', *lines[3:]],
        lambda lines: [*lines[:3], b'"pending"', *lines[3:]],
        lambda lines: [*lines[:-2], lines[-2][:-5], *lines[-1:]],
        lambda lines: [lines[0].replace(b"consortium-proof/1", b"consortium-proof/2"), *lines[1:]],
        lambda lines: [lines[0].replace(b"consortium-audit-export/1", b"something-else"), *lines[1:]],
    ],
    ids=["not-json", "empty-line", "batch-without-fields", "no-batch", "a-string", "cut-short", "v2", "not-export"],
)
def test_an_unreadable_export_is_refused_with_the_same_message(
    tmp_path: Path, workers: int, edit: Callable[[list[bytes]], list[bytes]]
) -> None:
    audit, _ = history()
    path = _export(tmp_path, audit)
    path.write_bytes(b"\n".join(edit(_lines(path))))
    with pytest.raises(AuditSourceError) as whole:
        read_export(path)
    with pytest.raises(AuditSourceError) as streamed:
        digest_export(path, workers)
    assert str(streamed.value) == str(whole.value)


def test_pending_lines_anywhere_and_a_last_line_without_newline_read_as_before(tmp_path: Path, workers: int) -> None:
    audit, events = history()
    path = _export(tmp_path, audit)
    lines = [line for line in _lines(path) if line]
    moved = [lines[0], lines[-1], *lines[1:-1]]  # the pending line first, and no final newline
    path.write_bytes(b"\n".join(moved))
    expected = _read_whole(path, events)
    assert expected.ok and expected.pending == 3
    assert _streamed(path, events, workers).as_dict() == expected.as_dict()


def test_the_fast_leaf_is_the_reference_leaf_for_the_records_an_export_holds() -> None:
    audit, _ = history()
    for claim in audit.batches:
        for r in claim.records:
            assert leaf_hash_fast(orjson.loads(orjson.dumps(r))) == leaf_hash(r)


def test_a_record_that_is_not_an_object_fails_as_it_did_and_leaves_no_worker_waiting(
    tmp_path: Path, workers: int
) -> None:
    audit, events = history()
    path = _export(tmp_path, audit)
    lines = _lines(path)
    lines[2] = lines[2].replace(b'"records":[', b'"records":[7,', 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(AttributeError):
        _read_whole(path, events)
    with pytest.raises(AttributeError):
        _streamed(path, events, workers)
