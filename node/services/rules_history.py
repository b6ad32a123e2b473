"""`consortium rules history`: the rule book versions as the chain holds them, matched against rule book
files the caller trusts (an auditor's copies), and followed live through the contract's events."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from chain.rules_client import RuleRegistryClient, rule_events
from negotiation.rules.book import CheckedBook, RuleBookInvalid, load_book
from node.services.rules_keeper import governance_terms


def history_from_chain(rpc_url: str, contract: str, books: Iterable[Path]) -> list[dict[str, Any]]:
    client = RuleRegistryClient(rpc_url, contract)
    known: dict[str, tuple[Path, CheckedBook]] = {}
    out: list[dict[str, Any]] = []
    for path in books:
        try:
            checked = load_book(path)
        except RuleBookInvalid as e:
            out.append({"file": str(path), "error": str(e)})
            continue
        known[checked.version] = (path, checked)
    active, block = client.active()
    for v in client.versions():
        line: dict[str, Any] = {
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
    for version, (path, _checked) in known.items():
        if version not in {line.get("version") for line in out}:
            out.append({"file": str(path), "version": version, "on_chain": False})
    return out


def follow_events(
    rpc_url: str, contract: str, emit: Callable[[dict[str, Any]], None], poll_seconds: float = 1.0
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
