"""A dispute's lines (node/services/approvals.py): flow keys signed as canonical JSON, the same text whatever
order or repetition an operator ticked them in, read back strictly, and cut to what a StatementDispute holds."""

from __future__ import annotations

import json

import pytest

from negotiation.messages import MessageRefused
from node.services.approvals import MAX_LINES_CHARS, FlowKey, differing_flows, fitting, lines_text, read_lines

A, B = "0x" + "a1" * 20, "0x" + "b2" * 20


def key(kind: str, reference: str) -> FlowKey:
    return {"kind": kind, "reference": reference, "from": A, "to": B}


def test_the_same_lines_sign_as_the_same_text() -> None:
    price, freight = key("transfer_price", "0x01"), key("freight_compensation", "0x01")
    text = lines_text([price, freight, price])
    assert text == lines_text([freight, price])
    assert read_lines(text) == [freight, price]
    assert json.loads(text)[0] == {"from": A, "kind": "freight_compensation", "reference": "0x01", "to": B}


@pytest.mark.parametrize(
    "text", ["{", "{}", '[{"kind": "k"}]', '[{"kind": 1, "reference": "r", "from": "a", "to": "b"}]']
)
def test_lines_that_are_no_list_of_flow_keys_are_malformed(text: str) -> None:
    with pytest.raises(MessageRefused) as refused:
        read_lines(text)
    assert refused.value.reason == "malformed"


def test_the_flows_a_member_does_not_hold_as_they_are_and_as_many_as_a_dispute_holds() -> None:
    theirs = [{**key("transfer_price", f"0x{i:064x}"), "amount": 100} for i in range(60)]
    mine = [{**theirs[0]}, {**theirs[1], "amount": 99}]
    differing = differing_flows(theirs, mine)
    assert len(differing) == 59 and differing[0]["reference"] == theirs[1]["reference"]
    kept = fitting(differing)
    assert 0 < len(kept) < 59 and len(lines_text(kept)) <= MAX_LINES_CHARS
