"""`consortium rules history`: the rule book versions as the chain holds them, matched against rule book
files the caller trusts (an auditor's copies), and followed live through the contract's events."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal, NotRequired, TypedDict, Union

from chain.rules_client import RuleRegistryClient, rule_events
from negotiation.rules.book import CheckedBook, RuleBookInvalid, load_book
from node.services.rules_keeper import governance_terms


class BookUnreadable(TypedDict):
    file: str
    error: str


class VersionOnChain(TypedDict):
    """A version the registry holds; with `file`, `label` and `governance_matches` when a book given hashes to it."""

    version: str
    parent: str
    proposer: str
    proposed_at_block: int
    approvals: list[str]
    quorum: int
    required: list[str]
    activates_at_block: int | None
    active_at_block: int | None  # the block read at, for the version in force
    uri: str
    file: NotRequired[str]
    label: NotRequired[str]
    governance_matches: NotRequired[bool]


class BookNotOnChain(TypedDict):
    file: str
    version: str
    on_chain: Literal[False]


HistoryLine = Union[BookUnreadable, VersionOnChain, BookNotOnChain]  # noqa: UP007  # a runtime value


def history_from_chain(rpc_url: str, contract: str, books: Iterable[Path]) -> list[HistoryLine]:
    client = RuleRegistryClient(rpc_url, contract)
    known: dict[str, tuple[Path, CheckedBook]] = {}
    out: list[HistoryLine] = []
    for path in books:
        try:
            checked = load_book(path)
        except RuleBookInvalid as e:
            out.append({"file": str(path), "error": str(e)})
            continue
        known[checked.version] = (path, checked)
    active, block = client.active()
    versions = client.versions()
    for v in versions:
        line: VersionOnChain = {
            "version": v.version,
            "parent": v.parent,
            "proposer": v.proposer,
            "proposed_at_block": v.proposed_at_block,
            "approvals": list(v.approvals),
            "quorum": v.governance.quorum,
            "required": list(v.governance.required),
            "activates_at_block": v.activates_at_block,
            "active_at_block": block if v.version == active else None,
            "uri": v.uri,
        }
        if v.version in known:
            path, checked = known[v.version]
            line["file"] = str(path)
            line["label"] = checked.book.label
            line["governance_matches"] = governance_terms(checked) == v.governance.normalised()
        out.append(line)
    on_chain = {v.version for v in versions}
    for version, (path, _checked) in known.items():
        if version not in on_chain:
            out.append({"file": str(path), "version": version, "on_chain": False})
    return out


def follow_events(
    rpc_url: str, contract: str, emit: Callable[[Mapping[str, object]], None], poll_seconds: float = 1.0
) -> None:
    """Print every Proposed, Approved and Scheduled event from now on, until interrupted."""
    client = RuleRegistryClient(rpc_url, contract)
    seen = client.w3.eth.block_number
    try:
        while True:
            head = client.w3.eth.block_number
            if head > seen:
                for event in rule_events(client, seen + 1, head):
                    emit(event)
                seen = head
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        return
