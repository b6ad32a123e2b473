"""What the outbox makes of a peer's answer to a batch: each message's own status (delivered, retried, refused for
good), and a peer from before the batch inbox (404) served one message a request from then on. The peer is an
httpx MockTransport: this is the outbox's own logic; real nodes answer batches in tests/chain/test_message_batches.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlmodel import col, select

import node.store.tables  # noqa: F401  (the tables, for create_all)
from chain.anvil import DEFAULT_PRIVATE_KEYS
from chain.peers import PeerClient
from negotiation.messages import Domain, SignedMessage, parse
from node.domain.states import OutboxStatus
from node.errors import InsufficientStock
from node.services.outbox import Outbox
from node.store.engine import make_engine, session_scope
from node.store.tables import OutboxMessage
from tests.helpers.messages import invitation_envelope

KEY = DEFAULT_PRIVATE_KEYS[1]
PEER = "0x" + "12" * 20
DOMAIN = Domain("c", 31337, "0x" + "00" * 20)


def outbox_with(tmp_path: Path, peer: httpx.MockTransport, n: int) -> tuple[Outbox, list[str]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    outbox = Outbox(engine, "0xme", lambda _a: "http://peer", PeerClient(httpx.Client(transport=peer)))
    ids = []
    with session_scope(engine) as s:
        for _ in range(n):
            msg = parse(invitation_envelope(DOMAIN, KEY, "0x" + "ab" * 32))
            outbox.enqueue(s, msg, PEER)
            ids.append(msg.message["id"])
    return outbox, ids


def statuses(outbox: Outbox) -> list[tuple[OutboxStatus, int]]:
    with session_scope(outbox.engine) as s:
        rows = s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        return [(OutboxStatus(r.status), r.attempts) for r in rows]


def test_each_message_of_a_batch_takes_its_own_answer(tmp_path: Path) -> None:
    paths: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        sent = json.loads(request.content)["messages"]
        assert [m["message"]["id"] for m in sent] == ids  # in the order queued
        results = [
            {"status": 202, "body": {"accepted": "Invitation", "id": ids[0]}},
            {"status": 409, "body": {"error": "replayed", "message": "seen", "detail": {}}},
            {"status": 503, "body": {"error": "chain_unreachable", "message": "later", "detail": {}}},
            {"status": 403, "body": {"error": "not_a_member", "message": "no", "detail": {}}},
        ]
        return httpx.Response(200, json={"results": results})

    outbox, ids = outbox_with(tmp_path, httpx.MockTransport(peer), 4)
    assert outbox.deliver() == 2  # the admitted one, and the one our earlier attempt had delivered (replayed)
    assert paths == ["/negotiation/messages/batch"]
    assert statuses(outbox) == [
        (OutboxStatus.DELIVERED, 1),
        (OutboxStatus.DELIVERED, 1),
        (OutboxStatus.PENDING, 1),  # retried after its back-off
        (OutboxStatus.REFUSED, 1),
    ]


def test_a_peer_without_a_batch_inbox_gets_one_message_a_request(tmp_path: Path) -> None:
    paths: list[str] = []

    def old_peer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path.endswith("/batch"):  # what a node from before batches answers there (node/api/limits.py)
            body = {"error": "unauthorized", "message": "missing or wrong bearer token", "detail": {}}
            return httpx.Response(401, json=body)
        return httpx.Response(202, json={"accepted": "Invitation", "id": json.loads(request.content)["message"]["id"]})

    outbox, _ids = outbox_with(tmp_path, httpx.MockTransport(old_peer), 2)
    assert outbox.deliver() == 2
    assert paths == ["/negotiation/messages/batch", "/negotiation/messages", "/negotiation/messages"]
    with session_scope(outbox.engine) as s:  # two more: the peer is not asked for a batch again
        for _ in range(2):
            outbox.enqueue(s, parse(invitation_envelope(DOMAIN, KEY, "0x" + "ab" * 32)), PEER)
    paths.clear()
    assert outbox.deliver() == 2
    assert paths == ["/negotiation/messages", "/negotiation/messages"]
    assert statuses(outbox) == [(OutboxStatus.DELIVERED, 1)] * 4


def test_a_batch_the_peer_did_not_answer_is_retried_whole(tmp_path: Path) -> None:
    def down(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    outbox, _ids = outbox_with(tmp_path, httpx.MockTransport(down), 3)
    assert outbox.deliver() == 0
    assert statuses(outbox) == [(OutboxStatus.PENDING, 1)] * 3


def test_a_batch_refused_as_a_whole_is_sent_again_one_message_a_request(tmp_path: Path) -> None:
    paths: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path.endswith("/batch"):
            return httpx.Response(413, json={"error": "too_large", "message": "over 1 MiB", "detail": {}})
        return httpx.Response(202, json={"accepted": "Invitation", "id": json.loads(request.content)["message"]["id"]})

    outbox, _ids = outbox_with(tmp_path, httpx.MockTransport(peer), 2)
    assert outbox.deliver() == 2
    assert paths == ["/negotiation/messages/batch", "/negotiation/messages", "/negotiation/messages"]


def test_a_refusal_that_cannot_be_acted_on_is_retried_and_the_others_are_kept(tmp_path: Path) -> None:
    def peer(request: httpx.Request) -> httpx.Response:
        refused = {"status": 409, "body": {"error": "closed", "message": "planned", "detail": {}}}
        return httpx.Response(200, json={"results": [refused, {"status": 202, "body": {"accepted": "Invitation"}}]})

    outbox, ids = outbox_with(tmp_path, httpx.MockTransport(peer), 2)
    given_back: list[str] = []

    def on_refused(_s: object, msg: SignedMessage) -> None:
        given_back.append(msg.message["id"])
        raise InsufficientStock("the reservation to release is gone")

    outbox.on_refused = on_refused
    assert outbox.deliver() == 1
    assert given_back == [ids[0]]
    assert statuses(outbox) == [(OutboxStatus.PENDING, 1), (OutboxStatus.DELIVERED, 1)]
