"""Pure audit logic: claims against chain events given as plain data (the integration tests use a real chain)."""

from __future__ import annotations

import copy

from chain.audit import AuditInput, BatchClaim, verify
from chain.canonical import leaf_hash
from chain.merkle import MerkleTree
from tests.helpers.events import Event

NODE = "0x00000000000000000000000000000000000000AA"
CONTRACT = "0x00000000000000000000000000000000000000CC"


def records(first: int, n: int) -> list[dict[str, object]]:
    return [
        {
            "kind": "ledger",
            "node": NODE,
            "seq": s,
            "type": "receipt",
            "at": "2026-11-25T00:00:00.000000Z",
            "lines": [{"quantity": s}],
        }
        for s in range(first, first + n)
    ]


def history() -> tuple[AuditInput, list[Event]]:
    batches, events, prev = [], [], b"\x00" * 32
    for k, (first, n) in enumerate([(1, 3), (4, 5)], start=1):
        recs = records(first, n)
        tree = MerkleTree([leaf_hash(r) for r in recs])
        batches.append(
            BatchClaim(
                k,
                tree.root.hex(),
                31337,
                CONTRACT,
                f"0x{k:064x}",
                k,
                n,
                recs,
                list(range(n)),
                [leaf_hash(r).hex() for r in recs],
                [tree.proof(i) for i in range(n)],
            )
        )
        events.append(Event(k, tree.root, prev, n, f"0x{k:064x}"))
        prev = tree.root
    return AuditInput("ledger", NODE, batches, records(9, 2)), events


def test_honest_history_verifies() -> None:
    audit, events = history()
    report = verify(audit, events, 31337, CONTRACT, check_paths=True)
    assert report.ok, report.findings
    assert (report.records_verified, report.batches_verified, report.pending) == (8, 2, 2)


def test_altered_record_is_named() -> None:
    audit, events = history()
    audit.batches[1].records[2]["lines"] = [{"quantity": 999}]
    report = verify(audit, events, 31337, CONTRACT)
    assert not report.ok
    assert {f.record_seq for f in report.findings if f.record_seq} == {6}
    assert any("root recomputed" in f.problem and f.batch_seq == 2 for f in report.findings)


def test_record_dropped_from_a_batch_is_caught() -> None:
    audit, events = history()
    claim = audit.batches[0]
    for field in ("records", "leaf_indexes", "claimed_leaves"):
        getattr(claim, field).pop(1)
    report = verify(audit, events, 31337, CONTRACT)
    assert any("record sequence gap" in f.problem for f in report.findings)
    assert any("the chain says 3" in f.problem for f in report.findings)


def test_hidden_batch_and_wrong_chain_are_caught() -> None:
    audit, events = history()
    hidden = copy.deepcopy(audit)
    hidden.batches.pop()
    hidden.pending = []
    findings = verify(hidden, events, 31337, CONTRACT).findings
    assert any("missing from the node's documents" in f.problem for f in findings)
    assert any("audited chain is 1" in f.problem for f in verify(audit, events, 1, CONTRACT).findings)


def test_forged_proof_path_is_caught_when_paths_are_checked() -> None:
    audit, events = history()
    proofs = audit.batches[1].proofs
    assert proofs is not None
    proofs[0] = [{"right": "00" * 32}]
    assert verify(audit, events, 31337, CONTRACT).ok
    report = verify(audit, events, 31337, CONTRACT, check_paths=True)
    assert [f.record_seq for f in report.findings] == [4]


def test_rewritten_history_breaks_the_chain_of_roots() -> None:
    audit, events = history()
    events[1] = Event(2, events[1].root, b"\x11" * 32, events[1].leaf_count, events[1].tx_hash)
    assert any("previous batch" in f.problem for f in verify(audit, events, 31337, CONTRACT).findings)
