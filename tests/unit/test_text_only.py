"""A lone surrogate ("\\ud800" in JSON) is no character and no UTF-8 encodes it: a record cannot hold it. The
node refuses such a request with a 422 and changes nothing; an auditor handed such a record reports it as a
finding instead of crashing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from chain.audit import AuditInput, BatchClaim, verify
from chain.canonical import NotCanonicalizable, canonical_json
from node.api.app import create_app
from node.settings import NodeSettings
from tests.helpers.events import Event

TOKEN = "an-operator-token-for-text"


def test_canonical_form_refuses_a_lone_surrogate_as_not_canonicalizable() -> None:
    with pytest.raises(NotCanonicalizable):
        canonical_json({"memo": "\ud800"})
    assert canonical_json({"memo": "\U0001f600"}) == '{"memo":"\U0001f600"}'.encode()  # a real character is fine


def test_the_node_refuses_a_lone_surrogate_with_422_and_changes_nothing(tmp_path: Path) -> None:
    app = create_app(NodeSettings(database_url=f"sqlite:///{tmp_path / 'n.db'}", api_token=TOKEN, anchor_enabled=False))
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    receipt = (
        '{"type": "receipt", "sku": "S", "lot": "L", "location": "WH", "quantity": 1, "expires_on": "2027-01-01",'
        ' "memo": "%s"}'
    )

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as c:
            await c.post("/skus", json={"code": "S", "name": "S"}, headers=auth)
            await c.post("/locations", json={"code": "WH", "name": "W", "lat": 30, "lon": 120}, headers=auth)
            return [
                await c.post("/ledger/movements", content=receipt % "\\ud800", headers=auth),
                await c.get("/ledger/records", headers=auth),
                await c.get("/stock", headers=auth),
            ]

    refused, records, stock = asyncio.run(go())
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_request"
    assert records.json() == [] and stock.json() == []


def test_an_auditor_reports_a_record_with_a_lone_surrogate_instead_of_crashing() -> None:
    member = "0x" + "11" * 20
    record = {
        "kind": "ledger",
        "node": member,
        "seq": 1,
        "type": "issue",
        "at": "2026-11-26T00:00:00.000000Z",
        "lines": [],
        "evidence": [],
        "memo": "\ud800",
        "corrects": None,
    }
    root = "ab" * 32
    claim = BatchClaim(1, root, 31337, "0x" + "22" * 20, "0x" + "33" * 32, 7, 1, [record], [0], ["cd" * 32])
    event = Event(1, bytes.fromhex(root), bytes(32), 1, "0x" + "33" * 32)
    report = verify(AuditInput("ledger", member, [claim], []), [event], 31337, "0x" + "22" * 20)
    assert [f.record_seq for f in report.findings if "cannot be hashed" in f.problem] == [1]
