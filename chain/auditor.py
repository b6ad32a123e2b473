"""The auditor's I/O: fetch proof documents from a node or an export file, read the chain, call verify."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from web3 import Web3

from chain.anchor_client import AnchorReader
from chain.audit import (
    PROOF_FORMAT,
    AuditInput,
    AuditReport,
    BatchClaim,
    Finding,
    check_format,
    group_documents,
    verify,
)
from chain.deploy import contract
from chain.errors import AuditSourceError, BadDocument

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


def _client(token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(headers=headers, timeout=60.0)


def iter_documents(node_url: str, kind: str, token: str | None = None, page: int = 5000) -> Iterator[dict[str, Any]]:
    after = 0
    with _client(token) as http:
        while True:
            resp = http.get(
                f"{node_url.rstrip('/')}/audit/records", params={"kind": kind, "after": after, "limit": page}
            )
            if resp.status_code != 200:
                raise AuditSourceError(f"{node_url} answered {resp.status_code}: {resp.text[:300]}")
            body = orjson.loads(resp.content)
            try:
                check_format(body.get("format"), f"the page of {node_url}/audit/records after {after}")
            except BadDocument as exc:
                raise AuditSourceError(str(exc)) from exc
            yield from body["items"]
            if body["next_after"] is None:
                return
            after = int(body["next_after"])


def fetch_identity(node_url: str, token: str | None = None) -> dict[str, Any]:
    with _client(token) as http:
        resp = http.get(f"{node_url.rstrip('/')}/audit/identity")
    if resp.status_code != 200:
        raise AuditSourceError(f"{node_url} answered {resp.status_code}: {resp.text[:300]}")
    identity: dict[str, Any] = resp.json()
    return identity


def fetch_balances(node_url: str, token: str | None = None) -> list[dict[str, Any]]:
    """The balances a node serves (GET /audit/balances), to compare with what its records add up to."""
    with _client(token) as http:
        resp = http.get(f"{node_url.rstrip('/')}/audit/balances")
    if resp.status_code != 200:
        raise AuditSourceError(f"{node_url} answered {resp.status_code}: {resp.text[:300]}")
    balances: list[dict[str, Any]] = resp.json()
    return balances


def from_node(node_url: str, kind: str, token: str | None = None) -> Source:
    identity = fetch_identity(node_url, token)
    try:
        audit = group_documents(kind, identity["address"], iter_documents(node_url, kind, token))
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


def read_export(path: Path) -> Source:
    try:
        with path.open("rb") as f, _no_cyclic_gc():
            header = orjson.loads(f.readline())
            if header.get("format") != EXPORT_FORMAT:
                raise AuditSourceError(f"{path} is not a {EXPORT_FORMAT} file")
            try:  # exports written before "proof_format" existed follow version 1
                check_format(header.get("proof_format"), f"export {path}")
            except BadDocument as exc:
                raise AuditSourceError(str(exc)) from exc
            batches: list[BatchClaim] = []
            pending: list[dict[str, Any]] = []
            for line in f:
                item = orjson.loads(line)
                if "pending" in item:
                    pending.extend(item["pending"])
                    continue
                b = item["batch"]
                records = item["records"]
                batches.append(
                    BatchClaim(
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
                )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, AuditSourceError):
            raise
        raise AuditSourceError(f"cannot read export {path}: {exc}") from exc
    audit = AuditInput(str(header["kind"]), str(header["member"]), batches, pending)
    return Source(audit, header.get("node_url"), header.get("registry"), header.get("anchor_contract"))


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


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
    address = contract_address or source.anchor_contract
    if not address:
        raise AuditSourceError("no anchor contract: pass --contract")
    reader = AnchorReader(rpc_url, address)
    extra: list[Finding] = []
    registry = contract(reader.w3, "MemberRegistry", reader.registry_address())
    member = registry.functions.getMember(Web3.to_checksum_address(source.audit.member)).call()
    name, role, node_url = member[0], member[1], member[2]
    if role == 0:
        extra.append(Finding(f"{source.audit.member} was never a member of the registry {registry.address}"))
    elif source.node_url and contract_address is None and not _same_url(node_url, source.node_url):
        extra.append(Finding(f"registry lists {name}'s node at {node_url}, not {source.node_url}"))
    events = reader.anchored_events(source.audit.member, source.audit.kind)
    report = verify(source.audit, events, reader.chain_id, reader.address, check_paths=check_paths)
    report.findings[:0] = extra
    return report
