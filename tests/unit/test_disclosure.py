"""The disclosure policy (chain/disclosure.py) on the record bodies real nodes wrote (testdata/records/golden.json):
every type decided, each party served its records, a stranger nothing, and a plan never a competitor's offer."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.canonical import leaf_hash
from chain.disclosure import (
    RULES,
    AuditScope,
    Decision,
    Disclosure,
    Reader,
    Withheld,
    commitment,
    disclose,
    restore,
)
from chain.records import RecordKind, RecordType

GOLDEN: list[dict[str, Any]] = [
    json.loads(r["body"])
    for r in json.loads((Path(__file__).resolve().parents[2] / "testdata/records/golden.json").read_text())["records"]
]
STRANGER = "0x000000000000000000000000000000000000dEaD"
# The requester the golden reservation's memo names ("reserved for offer ... to <requester>").
RESERVATION_FOR = "0x863F0B6a206fC56Ff81A8Fe02A2D62f8bA16896c"


def _named(body: dict[str, Any]) -> set[str]:
    """Who each golden record names as a party, read independently of the policy's own paths."""
    t = RecordType(body["type"])
    line_people = {line[k] for line in body["lines"] for k in ("owner", "holder")}
    if t is RecordType.PLAN:
        problem = body["plan"]["problem"]
        return {o["node"] for o in problem["offers"]} | {r["node"] for r in problem["requests"]}
    by_type: dict[RecordType, set[str]] = {
        RecordType.JOINT_PURCHASE: {body.get("joint_purchase", {}).get("buyer", "")}
        | {s["participant"] for s in body.get("joint_purchase", {}).get("shares", [])},
        RecordType.JOINT_PURCHASE_SHARE: {body.get("joint_purchase", {}).get(k, "") for k in ("buyer", "participant")},
        RecordType.SETTLEMENT: {s["signer"] for s in body.get("settlement", {}).get("signatures", [])},
        RecordType.LOAN_RETURN: {body.get("loan_return", {}).get("borrower", "")} | line_people,
    }
    if t in by_type:
        return by_type[t]
    for key, fields in (
        ("transfer", ("supplier", "requester")),
        ("loan", ("lender", "borrower")),
        ("loan_sale", ("lender", "borrower")),
        ("dispute", ("opener", "respondent")),
        ("ruling", ("payer", "payee", "arbitrator")),
    ):
        if key in body:
            return {body[key][f] for f in fields}
    return line_people


def _value_at(body: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        body = body[step]
    return body


def _check_part(body: dict[str, Any], decision: Decision) -> None:
    """Every commitment is recomputable from the written body, and the part with the withheld values put back is
    the written body, byte for byte."""
    assert decision.body is not None and decision.withheld
    values = {w.path: _value_at(body, w.path) for w in decision.withheld}
    assert all(commitment(values[w.path]) == w.commitment for w in decision.withheld)
    assert leaf_hash(restore(decision.body, decision.withheld, values)) == leaf_hash(body)


def test_every_record_type_has_a_rule() -> None:
    assert set(RULES) == set(RecordType)


@pytest.mark.parametrize("body", GOLDEN, ids=lambda b: f"{b['type']}-{b['seq']}")
def test_operator_and_full_auditor_see_every_record_whole(body: dict[str, Any]) -> None:
    for reader in (Reader.operator(), Reader.auditor(), Reader.auditor(AuditScope())):
        assert disclose(body, reader) == Decision(Disclosure.WHOLE, body)


@pytest.mark.parametrize("body", GOLDEN, ids=lambda b: f"{b['type']}-{b['seq']}")
def test_a_limited_auditor_sees_only_its_scope(body: dict[str, Any]) -> None:
    t, at = RecordType(body["type"]), body["at"]
    other = RecordType.RECEIPT if t is not RecordType.RECEIPT else RecordType.ISSUE
    assert disclose(body, Reader.auditor(AuditScope(types=frozenset({t})))).disclosure is Disclosure.WHOLE
    assert disclose(body, Reader.auditor(AuditScope(types=frozenset({other})))).disclosure is Disclosure.NONE
    assert disclose(body, Reader.auditor(AuditScope(since=at, until=at + "1"))).disclosure is Disclosure.WHOLE
    assert disclose(body, Reader.auditor(AuditScope(until=at))).disclosure is Disclosure.NONE
    kinds = frozenset({RecordKind(body["kind"])})
    assert disclose(body, Reader.auditor(AuditScope(kinds=kinds))).disclosure is Disclosure.WHOLE


@pytest.mark.parametrize("body", GOLDEN, ids=lambda b: f"{b['type']}-{b['seq']}")
def test_a_stranger_sees_nothing(body: dict[str, Any]) -> None:
    assert disclose(body, Reader.member(STRANGER)) == Decision(Disclosure.NONE)


@pytest.mark.parametrize("body", GOLDEN, ids=lambda b: f"{b['type']}-{b['seq']}")
def test_each_party_sees_its_record(body: dict[str, Any]) -> None:
    """Whole, except a plan (its own part) and a movement mixing its lines with the operator's."""
    for party in _named(body) - {body["node"]}:
        for spelt in (party, party.lower()):
            decision = disclose(body, Reader.member(spelt))
            if decision.disclosure is Disclosure.PART:
                assert body["type"] in {RecordType.PLAN, RecordType.BUY_OUT}
                _check_part(body, decision)
            else:
                assert decision == Decision(Disclosure.WHOLE, body), (body["type"], party)


@pytest.mark.parametrize("body", GOLDEN, ids=lambda b: f"{b['type']}-{b['seq']}")
def test_what_a_member_wrote_it_sees_whole(body: dict[str, Any]) -> None:
    assert disclose(body, Reader.member(body["node"])) == Decision(Disclosure.WHOLE, body)


def _two_supplier_plan() -> dict[str, Any]:
    body = copy.deepcopy(next(b for b in GOLDEN if b["type"] == "plan" and len(b["plan"]["problem"]["offers"]) == 2))
    body["plan"]["problem"]["offers"][1]["unit_price"] = 5317  # a price no other field holds
    return body


def test_a_plan_never_shows_a_supplier_its_competitor() -> None:
    body = _two_supplier_plan()
    offers = body["plan"]["problem"]["offers"]
    for mine, theirs in ((offers[0], offers[1]), (offers[1], offers[0])):
        decision = disclose(body, Reader.member(mine["node"]))
        assert decision.disclosure is Disclosure.PART and decision.body is not None
        text = json.dumps(decision.body) + json.dumps([w.commitment for w in decision.withheld])
        for leaked in (theirs["node"], theirs["node"].lower(), theirs["id"], str(theirs["unit_price"])):
            assert leaked.lower() not in text.lower()
        plan = decision.body["plan"]
        assert plan["problem"]["offers"] == [mine]
        assert [a["offer"] for a in plan["answer"]["allocations"]] == [mine["id"]]
        assert "total_cost" not in plan["answer"] and "memo" not in decision.body
        _check_part(body, decision)


def test_a_plan_part_names_each_withheld_item_by_its_place() -> None:
    body = _two_supplier_plan()
    decision = disclose(body, Reader.member(body["plan"]["problem"]["offers"][0]["node"]))
    paths = {w.path for w in decision.withheld}
    assert ("plan", "problem", "offers", 1) in paths and ("plan", "answer", "allocations", 1) in paths
    assert ("plan", "problem", "lanes", 1) in paths and ("memo",) in paths and ("plan", "parameters") in paths
    assert all(len(w.commitment) == 64 and w.commitment == w.commitment.lower() for w in decision.withheld)


def test_a_tampered_value_does_not_restore() -> None:
    body = _two_supplier_plan()
    decision = disclose(body, Reader.member(body["plan"]["problem"]["offers"][0]["node"]))
    assert decision.body is not None
    values = {w.path: _value_at(body, w.path) for w in decision.withheld}
    values[("plan", "problem", "offers", 1)] = {**values[("plan", "problem", "offers", 1)], "unit_price": 1}
    with pytest.raises(ValueError, match="commitment"):
        restore(decision.body, decision.withheld, values)


def test_a_reservation_is_disclosed_to_the_invitations_requester() -> None:
    body = next(b for b in GOLDEN if b["type"] == "status_change" and b["evidence"])
    invitation = next(e["reference"] for e in body["evidence"] if e["source"] == "invitation")
    assert RESERVATION_FOR in body["memo"]
    requesters = {invitation: RESERVATION_FOR}
    assert disclose(body, Reader.member(RESERVATION_FOR), requesters) == Decision(Disclosure.WHOLE, body)
    assert disclose(body, Reader.member(RESERVATION_FOR)).disclosure is Disclosure.NONE
    assert disclose(body, Reader.member(STRANGER), requesters).disclosure is Disclosure.NONE


def test_consigned_stock_is_disclosed_to_its_owner_line_by_line() -> None:
    sale = next(b for b in GOLDEN if b["type"] == "issue" and b["evidence"])
    holder = sale["lines"][0]["holder"]
    assert disclose(sale, Reader.member(holder)) == Decision(Disclosure.WHOLE, sale)
    buy_out = next(b for b in GOLDEN if b["type"] == "buy_out")
    owner = next(line["owner"] for line in buy_out["lines"] if line["owner"] != buy_out["node"])
    decision = disclose(buy_out, Reader.member(owner))
    assert decision.disclosure is Disclosure.PART and decision.body is not None
    assert all(line["owner"] == owner for line in decision.body["lines"])
    assert {w.path for w in decision.withheld} == {("lines", 1), ("memo",)}


ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}(?![0-9a-fA-F])")
ADDRESSES = sorted({a for b in GOLDEN for a in _named(b) | {b["node"]}} | {STRANGER})
READERS = st.one_of(
    st.just(Reader.operator()),
    st.builds(
        lambda types, since: Reader.auditor(AuditScope(types=types, since=since)),
        st.none() | st.frozensets(st.sampled_from(list(RecordType))),
        st.none() | st.sampled_from(sorted({b["at"] for b in GOLDEN})),
    ),
    st.builds(Reader.member, st.sampled_from(ADDRESSES)),
)


@settings(max_examples=300, deadline=None)
@given(body=st.sampled_from(GOLDEN), reader=READERS)
def test_none_never_leaks_whole_is_the_body_and_part_restores(body: dict[str, Any], reader: Reader) -> None:
    decision = disclose(body, reader)
    if decision.disclosure is Disclosure.NONE:
        assert decision.body is None and decision.withheld == ()
    elif decision.disclosure is Disclosure.WHOLE:
        assert decision.body == body and decision.withheld == ()
    else:
        assert reader.address is not None
        _check_part(body, decision)
        # A part names no one but its reader and the node that wrote it.
        named = {a.lower() for a in ADDRESS.findall(json.dumps(decision.body))}
        assert named <= {reader.address.lower(), body["node"].lower()}
    assert isinstance(decision.withheld, tuple) and all(isinstance(w, Withheld) for w in decision.withheld)
