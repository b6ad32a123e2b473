"""The auditor's I/O: fetch proof documents from a node (through a PeerClient, chain/peers.py) or an export
file, read the chain, call verify."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from web3 import Web3

from chain.anchor_client import AnchorReader, OnChainAnchor
from chain.audit import (
    PROOF_FORMAT,
    AuditInput,
    AuditReport,
    BatchClaim,
    BatchDigest,
    Finding,
    check_format,
    digest_batch,
    group_documents,
    seq_digest,
    verify,
    verify_digests,
)
from chain.deploy import contract
from chain.errors import AuditSourceError, BadDocument
from chain.peers import PeerClient

# The export file's own layout (docs/proof-format.md section 7); its header also names the PROOF_FORMAT its
# records and batch claims follow, under "proof_format".
EXPORT_FORMAT = "consortium-audit-export/1"


@dataclass
class Source:
    """Where the claims come from, and the identity the node claims (cross-checked before use)."""

    audit: AuditInput
    node_url: str | None
    registry: str | None
    anchor_contract: str | None


def iter_documents(peers: PeerClient, node_url: str, kind: str, page: int = 5000) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        body = peers.audit_page(node_url, kind, after, page)
        try:
            check_format(body.get("format"), f"the page of {node_url}/audit/records after {after}")
        except BadDocument as exc:
            raise AuditSourceError(str(exc)) from exc
        yield from body["items"]
        if body["next_after"] is None:
            return
        after = body["next_after"]


def from_node(peers: PeerClient, node_url: str, kind: str) -> Source:
    """A node's records of `kind` and the identity it claims, read through `peers` (with its audit token)."""
    identity = peers.audit_identity(node_url)
    try:
        audit = group_documents(kind, identity["address"], iter_documents(peers, node_url, kind))
    except BadDocument as exc:
        raise AuditSourceError(f"{node_url}: {exc}") from exc
    return Source(audit, node_url, identity.get("registry"), identity.get("anchor_contract"))


def write_export(source: Source, path: Path) -> int:
    """JSON Lines: a header, one line per anchored batch with its records, one line of pending records."""
    a = source.audit
    count = 0
    with path.open("wb") as out:
        header = {
            "format": EXPORT_FORMAT,
            "proof_format": PROOF_FORMAT,
            "kind": a.kind,
            "member": a.member,
            "node_url": source.node_url,
            "registry": source.registry,
            "anchor_contract": source.anchor_contract,
            "exported_at": datetime.now(UTC).isoformat(),
        }
        out.write(orjson.dumps(header) + b"\n")
        for b in a.batches:
            batch = {
                "seq": b.seq,
                "root": b.root,
                "chain_id": b.chain_id,
                "contract": b.contract,
                "tx_hash": b.tx_hash,
                "block_number": b.block_number,
                "leaf_count": b.leaf_count,
            }
            out.write(orjson.dumps({"batch": batch, "records": b.records}) + b"\n")
            count += len(b.records)
        out.write(orjson.dumps({"pending": a.pending}) + b"\n")
    return count + len(a.pending)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Parsing millions of small dicts triggers the cyclic collector over and over (3x slower measured);
    records hold no cycles, so it is paused while they load."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_header(f: BinaryIO, path: Path) -> dict[str, Any]:
    header: dict[str, Any] = orjson.loads(f.readline())
    if header.get("format") != EXPORT_FORMAT:
        raise AuditSourceError(f"{path} is not a {EXPORT_FORMAT} file")
    try:  # exports written before "proof_format" existed follow version 1
        check_format(header.get("proof_format"), f"export {path}")
    except BadDocument as exc:
        raise AuditSourceError(str(exc)) from exc
    return header


def _parse_line(line: bytes | memoryview) -> BatchClaim | list[dict[str, Any]]:
    """One line after the header: a batch claim with its records, or the pending records."""
    item = orjson.loads(line)
    if "pending" in item:
        pending: list[dict[str, Any]] = item["pending"]
        return pending
    b = item["batch"]
    records = item["records"]
    return BatchClaim(
        seq=int(b["seq"]),
        root=str(b["root"]),
        chain_id=int(b["chain_id"]),
        contract=str(b["contract"]),
        tx_hash=str(b["tx_hash"]),
        block_number=int(b["block_number"]),
        leaf_count=int(b["leaf_count"]),
        records=records,
        leaf_indexes=list(range(len(records))),
    )


# What reading an export may raise for a file that is not a well-formed export (reported, exit 2).
_UNREADABLE = (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError)


def read_export(path: Path) -> Source:
    try:
        with path.open("rb") as f, _no_cyclic_gc():
            header = _read_header(f, path)
            batches: list[BatchClaim] = []
            pending: list[dict[str, Any]] = []
            for line in f:
                item = _parse_line(line)
                if isinstance(item, BatchClaim):
                    batches.append(item)
                else:
                    pending.extend(item)
    except _UNREADABLE as exc:
        if isinstance(exc, AuditSourceError):
            raise
        raise AuditSourceError(f"cannot read export {path}: {exc}") from exc
    audit = AuditInput(str(header["kind"]), str(header["member"]), batches, pending)
    return Source(audit, header.get("node_url"), header.get("registry"), header.get("anchor_contract"))


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def _read_anchors(
    rpc_url: str | Web3,
    contract_address: str | None,
    member: str,
    kind: str,
    node_url: str | None,
    anchor_contract: str | None,
) -> tuple[AnchorReader, list[Finding], list[OnChainAnchor]]:
    """The anchor contract to trust, what the registry says against the claimed identity, and the events.

    The anchor contract is the one the auditor names; if none is named, the one the node names is used
    only after the registry it points at confirms the member (and, for a live node, its URL).
    """
    address = contract_address or anchor_contract
    if not address:
        raise AuditSourceError("no anchor contract: pass --contract")
    reader = AnchorReader(rpc_url, address)
    extra: list[Finding] = []
    registry = contract(reader.w3, "MemberRegistry", reader.registry_address())
    found = registry.functions.getMember(Web3.to_checksum_address(member)).call()
    name, role, registered_url = found[0], found[1], found[2]
    if role == 0:
        extra.append(Finding(f"{member} was never a member of the registry {registry.address}"))
    elif node_url and contract_address is None and not _same_url(registered_url, node_url):
        extra.append(Finding(f"registry lists {name}'s node at {registered_url}, not {node_url}"))
    return reader, extra, reader.anchored_events(member, kind)


def audit_source(
    source: Source,
    rpc_url: str | Web3,
    contract_address: str | None = None,
    check_paths: bool = False,
) -> AuditReport:
    """Verify `source` against the chain at `rpc_url` (a URL, or an already-built Web3).

    The anchor contract is the one the auditor names; if none is named, the one the node names is used
    only after the registry it points at confirms the member (and, for a live node, its URL).
    """
    a = source.audit
    reader, extra, events = _read_anchors(
        rpc_url, contract_address, a.member, a.kind, source.node_url, source.anchor_contract
    )
    report = verify(a, events, reader.chain_id, reader.address, check_paths=check_paths)
    report.findings[:0] = extra
    return report


@dataclass
class ExportDigest:
    """An export file digested batch by batch (`digest_export`): its header's claims and, per batch, the
    claim without its records and what the records amount to. Honest batches keep a few objects each, so
    this grows with the number of batches, not of records."""

    kind: str
    member: str
    node_url: str | None
    registry: str | None
    anchor_contract: str | None
    batches: list[tuple[BatchClaim, BatchDigest]]
    pending: list[range | list[Any]]


# A worker's task: a run of consecutive lines, (kind, member, path, offset, line lengths). Lines are grouped
# up to this many bytes so that exports of many small batches (a node anchors 500 records at a time by
# default) do not pay a round trip per line; a line longer than this is a task of its own.
_TASK_BYTES = 8 << 20
_Task = tuple[str, str, str, int, list[int]]
_Entry = tuple[BatchClaim, BatchDigest] | range | list[Any] | str  # a batch, pending seqs, or why unreadable
# Below this size an export is digested in the calling process: starting workers would cost more than it saves.
_POOL_FROM_BYTES = 16 << 20


def _line_tasks(f: BinaryIO, kind: str, member: str, path: str) -> Iterator[_Task]:
    """Split the rest of `f` into tasks at line ends, reading it in blocks so that no line is held here."""
    offset = start = f.tell()
    lengths: list[int] = []
    line_start = start
    while block := f.read(1 << 20):
        end = block.find(b"\n")
        while end >= 0:
            line_end = offset + end + 1
            lengths.append(line_end - line_start)
            line_start = line_end
            if line_end - start >= _TASK_BYTES:
                yield (kind, member, path, start, lengths)
                start, lengths = line_end, []
            end = block.find(b"\n", end + 1)
        offset += len(block)
    if offset > line_start:  # a last line without its newline
        lengths.append(offset - line_start)
    if lengths:
        yield (kind, member, path, start, lengths)


def _digest_task(task: _Task) -> list[_Entry]:
    """Parse and digest a run of lines (in a worker process, or inline for a small export).

    A line that cannot be read ends the task with the reason, as `read_export` would have raised it; the
    caller raises it when it reaches that line in order.
    """
    kind, member, path, offset, lengths = task
    out: list[_Entry] = []
    with open(path, "rb") as f, _no_cyclic_gc():
        f.seek(offset)
        data = memoryview(f.read(sum(lengths)))
        at = 0
        for length in lengths:
            try:
                item = _parse_line(data[at : at + length])
            except _UNREADABLE as exc:
                out.append(str(exc))
                return out
            at += length
            if isinstance(item, BatchClaim):
                digest = digest_batch(kind, member, item)
                item.records, item.leaf_indexes = [], []  # not sent back: the digest holds what verify needs
                out.append((item, digest))
            else:
                out.append(seq_digest(item))
            del item  # free this batch's records before parsing the next line
    return out


def _worker_count(workers: int | None, size: int) -> int:
    if workers is not None:
        return max(1, workers)
    return 1 if size < _POOL_FROM_BYTES else len(os.sched_getaffinity(0))


def digest_export(path: Path, workers: int | None = None) -> ExportDigest:
    """Read an export as a stream and digest every batch, in `workers` processes (default: one per core
    for a large file). Memory is bounded by the largest batch per worker, not by the number of records.

    Refuses what `read_export` refuses, with the same messages (AuditSourceError).
    """
    try:
        with path.open("rb") as f:
            header = _read_header(f, path)
            tasks = list(_line_tasks(f, str(header.get("kind")), str(header.get("member")), str(path)))
        size = path.stat().st_size
    except _UNREADABLE as exc:
        if isinstance(exc, AuditSourceError):
            raise
        raise AuditSourceError(f"cannot read export {path}: {exc}") from exc
    batches: list[tuple[BatchClaim, BatchDigest]] = []
    pending: list[range | list[Any]] = []
    count = min(_worker_count(workers, size), len(tasks))
    with _map_in(count) as map_:
        for entries in map_(_digest_task, tasks):
            for entry in entries:
                if isinstance(entry, str):
                    raise AuditSourceError(f"cannot read export {path}: {entry}")
                if isinstance(entry, tuple):
                    batches.append(entry)
                else:
                    pending.append(entry)
    return ExportDigest(
        str(header["kind"]),
        str(header["member"]),
        header.get("node_url"),
        header.get("registry"),
        header.get("anchor_contract"),
        batches,
        pending,
    )


@contextmanager
def _map_in(workers: int) -> Iterator[Callable[[Callable[[_Task], list[_Entry]], list[_Task]], Iterable[list[_Entry]]]]:
    """An ordered map over tasks: inline for one worker, else a process pool (batches are independent).

    concurrent.futures rather than multiprocessing.Pool: leaving a Pool early (an unreadable line, a worker
    that raised) terminates it with tasks still queued, which can hang for good; an executor cancels what
    has not started, lets the running tasks end, and reports a dead worker instead of waiting for it.
    """
    if workers <= 1:
        yield map
        return
    # fork starts a worker in milliseconds and shares the loaded modules; a process with other threads
    # (a server) must not fork, since a lock another thread holds would stay held in the child.
    method = "fork" if threading.active_count() == 1 and "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(method)) as pool:
        try:
            yield pool.map
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def audit_digest(digest: ExportDigest, rpc_url: str | Web3, contract_address: str | None = None) -> AuditReport:
    """Verify a digested export against the chain at `rpc_url`, as `audit_source` verifies `read_export`'s."""
    reader, extra, events = _read_anchors(
        rpc_url, contract_address, digest.member, digest.kind, digest.node_url, digest.anchor_contract
    )
    report = verify_digests(
        digest.kind, digest.member, digest.batches, digest.pending, events, reader.chain_id, reader.address
    )
    report.findings[:0] = extra
    return report


def audit_export(
    path: Path, rpc_url: str | Web3, contract_address: str | None = None, workers: int | None = None
) -> AuditReport:
    """The report `audit_source(read_export(path), ...)` gives, streaming the file instead of loading it.

    An export stores no proof paths (docs/proof-format.md section 7), so there are none to fold.
    """
    return audit_digest(digest_export(path, workers), rpc_url, contract_address)
