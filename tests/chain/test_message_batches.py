"""The batch inbox (`POST /negotiation/messages/batch`, docs/protocol.md "Batches"): a peer sends what waits for
one node in one request; each message is admitted or refused by itself, in order, as the single inbox would.
Nodes served in-process on the real chain (tests/helpers/inprocess.py)."""

from __future__ import annotations

import json
import logging

import pytest

from chain.anvil import AnvilProcess
from negotiation.messages import MAX_MESSAGES_PER_BATCH
from tests.chain.test_inprocess_peers import invitation, invite, pair, state
from tests.helpers.inprocess import InProcessNetwork
from tests.helpers.nodes import fund_new_key


def test_each_message_of_a_batch_is_admitted_or_refused_by_itself_in_order(
    network: InProcessNetwork, anvil: AnvilProcess
) -> None:
    hz, xs = pair(network, "batch")
    domain = xs.negotiator.signer.domain
    first, second = invitation(domain, hz.key), invitation(domain, hz.key)
    outsider = invitation(domain, fund_new_key(anvil.rpc_url))  # funded, never registered
    oversized = {**first, "message": {**first["message"], "memo": "x" * 70_000}}  # over the single inbox's 64 KiB
    sent = [first, first, outsider, "not a message", oversized, second]
    with network.peer_client() as peer:
        r = peer.post(f"{xs.url}/negotiation/messages/batch", json={"messages": sent})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202, 409, 403, 422, 413, 202]
    errors = [x["body"].get("error") for x in results]
    assert errors == [None, "replayed", "not_a_member", "malformed", "too_large", None]
    ids = [x["body"].get("id") for x in results]
    assert ids == [first["message"]["id"], None, None, None, None, second["message"]["id"]]
    # Each admitted invitation was answered with an offer of 10 reserved units; the refused ones left nothing.
    assert all(len(x["body"]["offers"]) == 1 for x in (results[0], results[5]))
    assert xs.stock() == {("X1", "available"): 30, ("X1", "reserved"): 20}
    received = {i["id"] for i in xs.client.get("/negotiation/invitations").json()}
    assert received == {first["message"]["id"], second["message"]["id"]}
    # Sent again in a later batch, each once in it: refused by what the replay guard read ahead for the batch
    # (tests/unit/test_replay_read_ahead.py shows that read on its own).
    third = invitation(domain, hz.key)
    with network.peer_client() as peer:
        r = peer.post(f"{xs.url}/negotiation/messages/batch", json={"messages": [second, third, first]})
    assert [(x["status"], x["body"].get("error")) for x in r.json()["results"]] == [
        (409, "replayed"),
        (202, None),
        (409, "replayed"),
    ]
    assert xs.stock() == {("X1", "available"): 20, ("X1", "reserved"): 30}


def test_a_batch_refused_as_a_whole_changes_nothing(network: InProcessNetwork) -> None:
    hz, xs = pair(network, "whole")
    valid = invitation(xs.negotiator.signer.domain, hz.key)  # rides along wherever there is a list
    cases = {
        "not JSON": (b"not json", 422, "malformed"),
        "no message": (json.dumps({"messages": []}).encode(), 422, "malformed"),
        "not a list": (json.dumps({"messages": valid}).encode(), 422, "malformed"),
        "no envelope": (json.dumps([valid]).encode(), 422, "malformed"),
        "over 100": (json.dumps({"messages": [valid] * (MAX_MESSAGES_PER_BATCH + 1)}).encode(), 422, "malformed"),
        "over 1 MiB": (json.dumps({"messages": [valid, "x" * 2**20]}).encode(), 413, "too_large"),
    }
    before = state(xs)
    with network.peer_client() as peer:
        for case, (body, status, error) in cases.items():
            r = peer.post(
                f"{xs.url}/negotiation/messages/batch", content=body, headers={"Content-Type": "application/json"}
            )
            assert (r.status_code, r.json()["error"]) == (status, error), (case, r.text)
    assert state(xs) == before


def test_the_outbox_sends_what_waits_for_one_peer_in_one_request(
    network: InProcessNetwork, caplog: pytest.LogCaptureFixture
) -> None:
    hz, xs = pair(network, "outbox")
    ids = [invite(hz, quantity)["invitation"]["id"] for quantity in (5, 7, 9)]
    caplog.set_level(logging.DEBUG, logger="node.services.outbox")
    hz.deliver()
    to_xs = [r.getMessage() for r in caplog.records if "delivered to " + xs.address in r.getMessage()]
    assert [line.split()[1] for line in to_xs] == ids  # each invitation, in the order it was queued
    assert len({line.rsplit("request ", 1)[1] for line in to_xs}) == 1  # in one request
    # Xiaoshan admitted all three and answered each with an offer, again in one request.
    assert xs.stock() == {("X1", "available"): 29, ("X1", "reserved"): 21}
    caplog.clear()
    xs.deliver()
    offers = hz.client.get("/negotiation/offers").json()
    assert sorted((o["invitation"], o["quantity"]) for o in offers if o["supplier"] == xs.address) == sorted(
        zip(ids, (5, 7, 9), strict=True)
    )
    to_hz = [r.getMessage() for r in caplog.records if "delivered to " + hz.address in r.getMessage()]
    assert len(to_hz) == 3 and len({line.rsplit("request ", 1)[1] for line in to_hz}) == 1
