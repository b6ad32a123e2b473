"""The proof format version (docs/proof-format.md sections 5 and 7): written by the node, read by the auditor.

Pages and documents from node/store/proofs.py carry "format": PROOF_FORMAT; the auditor accepts that value or
none (pages, documents and exports from before the field existed), and refuses any other. Pure: an in-memory
SQLite node store, httpx's MockTransport for the node, no chain.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from chain.audit import PROOF_FORMAT, BadDocument, group_documents, verify
from chain.auditor import EXPORT_FORMAT, AuditSourceError, Source, from_node, read_export, write_export
from chain.peers import PeerClient
from node.domain.states import BatchStatus
from node.services.anchoring import form_batch
from node.store.engine import make_engine, session_scope
from node.store.proofs import proof_page
from node.store.records import append_record
from node.store.tables import AnchorBatch
from node.store.writers import ledger_transaction
from tests.helpers.events import Event

NODE = "0x00000000000000000000000000000000000000AA"
CONTRACT = "0x00000000000000000000000000000000000000CC"
TX = "0x" + "ab" * 32
VECTORS = Path(__file__).resolve().parents[2] / "testdata" / "proof" / "batches.json"


def _append(engine: Engine, n: int) -> None:
    with ledger_transaction(engine) as s:
        for _ in range(n):
            line = {"sku": "FORMULA-900G", "lot": "L1", "location": "WH", "owner": NODE, "holder": NODE}
            fields = {
                "lines": [{**line, "status": "available", "quantity": 1}],
                "evidence": [],
                "memo": "",
                "corrects": None,
            }
            append_record(s, "ledger", NODE, "receipt", fields)


def _anchor(engine: Engine) -> AnchorBatch:
    """Form the next batch and record it as anchored, as send_batch does after the chain's receipt."""
    batch = form_batch(engine, "ledger", 100)
    assert batch is not None
    with session_scope(engine) as s:
        row = s.get(AnchorBatch, batch.id)
        assert row is not None
        row.status, row.chain_id, row.contract, row.tx_hash, row.block_number = (
            BatchStatus.ANCHORED,
            31337,
            CONTRACT,
            TX,
            7,
        )
        s.add(row)
        return row


@pytest.fixture
def store() -> tuple[Engine, AnchorBatch]:
    """Three records anchored in batch 1, two pending."""
    engine = make_engine("sqlite://")
    _append(engine, 3)
    batch = _anchor(engine)
    _append(engine, 2)
    return engine, batch


def _page(engine: Engine, after: int = 0, limit: int = 100) -> str:
    with session_scope(engine) as s:
        return proof_page(s, "ledger", after, limit, None, None)


def test_the_page_and_every_document_open_with_the_format(store: tuple[Engine, AnchorBatch]) -> None:
    engine, _ = store
    text = _page(engine)
    assert text.startswith('{"format":"consortium-proof/1",')
    page = json.loads(text)
    assert list(page) == ["format", "kind", "items", "next_after"]
    assert page["format"] == PROOF_FORMAT and page["next_after"] is None
    assert [d["status"] for d in page["items"]] == ["anchored"] * 3 + ["pending"] * 2
    for doc in page["items"]:
        assert list(doc) == ["format", "record", "leaf", "status", "proof", "root", "anchor"]
        assert doc["format"] == PROOF_FORMAT
    # An empty page, and a page cut short by its limit, are versioned the same way.
    assert json.loads(_page(engine, after=5)) == {
        "format": PROOF_FORMAT,
        "kind": "ledger",
        "items": [],
        "next_after": None,
    }
    assert json.loads(_page(engine, limit=2))["format"] == PROOF_FORMAT


def test_the_vectors_hold_documents_exactly_as_the_node_serves_them(store: tuple[Engine, AnchorBatch]) -> None:
    engine, _ = store
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    served = json.loads(_page(engine))["items"]
    for doc in [d for b in vectors["batches"] for d in b["documents"]] + vectors["pending"]:
        assert doc["format"] == PROOF_FORMAT
        assert list(doc) == list(served[0])


def test_served_documents_verify(store: tuple[Engine, AnchorBatch]) -> None:
    engine, batch = store
    docs = json.loads(_page(engine))["items"]
    audit = group_documents("ledger", NODE, docs)
    event = Event(1, bytes.fromhex(batch.root), b"\x00" * 32, 3, TX)
    report = verify(audit, [event], 31337, CONTRACT, check_paths=True)
    assert report.ok, report.findings
    assert (report.records_verified, report.pending) == (3, 2)


def test_a_document_of_an_unknown_format_is_refused(store: tuple[Engine, AnchorBatch]) -> None:
    engine, _ = store
    docs = json.loads(_page(engine))["items"]
    future = copy.deepcopy(docs)
    future[1]["format"] = "consortium-proof/2"
    with pytest.raises(BadDocument, match=r"record 2.*'consortium-proof/2'.*consortium-proof/1"):
        group_documents("ledger", NODE, future)
    pending = copy.deepcopy(docs)
    pending[-1]["format"] = 1
    with pytest.raises(BadDocument, match="format 1"):
        group_documents("ledger", NODE, pending)


def test_a_document_without_a_format_is_read_as_version_1(store: tuple[Engine, AnchorBatch]) -> None:
    engine, _ = store
    docs = json.loads(_page(engine))["items"]
    for doc in docs:
        del doc["format"]
    audit = group_documents("ledger", NODE, docs)
    assert [len(b.records) for b in audit.batches] == [3] and len(audit.pending) == 2


def _mock_node(page: Callable[[str], str]) -> PeerClient:
    """A client to a node serving /audit/identity and /audit/records (through `page`, which may rewrite the
    served text)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/audit/identity":
            return httpx.Response(200, json={"address": NODE, "registry": None, "anchor_contract": CONTRACT})
        return httpx.Response(200, content=page(request.url.params["after"]))

    return PeerClient(httpx.Client(transport=httpx.MockTransport(handle)))


def test_the_auditor_reads_a_node_serving_this_format(store: tuple[Engine, AnchorBatch]) -> None:
    engine, _ = store
    peers = _mock_node(lambda after: _page(engine, after=int(after), limit=2))
    source = from_node(peers, "http://node", "ledger")
    assert [len(b.records) for b in source.audit.batches] == [3] and len(source.audit.pending) == 2


@pytest.mark.parametrize(
    ("what", "rewrite"),
    [
        ("page", lambda text: text.replace('"format":"consortium-proof/1"', '"format":"consortium-proof/2"', 1)),
        (
            "document",
            lambda text: text.replace(
                '{"format":"consortium-proof/1","record"', '{"format":"consortium-proof/9","record"', 1
            ),
        ),
    ],
)
def test_the_auditor_refuses_a_node_serving_an_unknown_format(
    store: tuple[Engine, AnchorBatch], what: str, rewrite: Callable[[str], str]
) -> None:
    engine, _ = store
    peers = _mock_node(lambda after: rewrite(_page(engine, after=int(after))))
    with pytest.raises(AuditSourceError, match=r"consortium-proof/[29]"):
        from_node(peers, "http://node", "ledger")


def test_an_export_names_the_proof_format_and_reads_back(store: tuple[Engine, AnchorBatch], tmp_path: Path) -> None:
    engine, _ = store
    audit = group_documents("ledger", NODE, json.loads(_page(engine))["items"])
    path = tmp_path / "export.jsonl"
    assert write_export(Source(audit, "http://node", None, CONTRACT), path) == 5
    header = json.loads(path.read_text().splitlines()[0])
    assert header["format"] == EXPORT_FORMAT and header["proof_format"] == PROOF_FORMAT
    back = read_export(path)
    assert [len(b.records) for b in back.audit.batches] == [3] and len(back.audit.pending) == 2


def _rewrite_header(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    change(header)
    out = path.with_name("changed.jsonl")
    out.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return out


def test_an_export_of_an_unknown_proof_format_is_refused_and_one_without_it_accepted(
    store: tuple[Engine, AnchorBatch], tmp_path: Path
) -> None:
    engine, _ = store
    audit = group_documents("ledger", NODE, json.loads(_page(engine))["items"])
    path = tmp_path / "export.jsonl"
    write_export(Source(audit, "http://node", None, CONTRACT), path)

    def future(header: dict[str, Any]) -> None:
        header["proof_format"] = "consortium-proof/2"

    with pytest.raises(AuditSourceError, match="consortium-proof/2"):
        read_export(_rewrite_header(path, future))

    def before_the_field(header: dict[str, Any]) -> None:
        del header["proof_format"]

    old = read_export(_rewrite_header(path, before_the_field))
    assert [len(b.records) for b in old.audit.batches] == [3]
