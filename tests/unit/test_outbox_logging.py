"""The outbox tells the operator what happens to a message: each retry at INFO with its back-off, a refusal for
good at WARNING with recipient, type, status and reason; each attempt carries a request id the peer logs too."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

import node.store.tables  # noqa: F401  (the tables, for create_all)
from chain.anvil import DEFAULT_PRIVATE_KEYS
from chain.peers import PeerClient
from negotiation.messages import Domain, parse
from node.services.outbox import Outbox
from node.store.engine import make_engine, session_scope
from node.store.tables import OutboxMessage
from tests.helpers.messages import invitation_envelope

KEY = DEFAULT_PRIVATE_KEYS[1]
PEER = "0x" + "12" * 20


def test_retries_and_a_refusal_for_good_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    answers = [httpx.Response(503, text="busy"), httpx.Response(403, json={"error": "not_a_member", "message": "no"})]
    seen_ids: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        seen_ids.append(request.headers["X-Request-ID"])
        return answers.pop(0)

    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    peers = PeerClient(httpx.Client(transport=httpx.MockTransport(peer)))
    outbox = Outbox(engine, "0xme", lambda _a: "http://peer", peers)
    msg = parse(invitation_envelope(Domain("c", 31337, "0x" + "00" * 20), KEY, "0x" + "ab" * 32))
    with session_scope(engine) as s:
        outbox.enqueue(s, msg, PEER)
    caplog.set_level(logging.INFO, logger="node.services.outbox")

    assert outbox.deliver() == 0
    [retry] = caplog.records
    assert retry.levelno == logging.INFO
    text = retry.getMessage()
    assert "Invitation" in text and PEER in text and "503" in text and "next try in 0.50s" in text
    assert seen_ids[0] in text

    with session_scope(engine) as s:  # the back-off has passed
        row = s.exec(select(OutboxMessage)).one()
        row.next_attempt_at = time.time() - 1
        s.add(row)
    caplog.clear()
    assert outbox.deliver() == 0
    [refused] = caplog.records
    assert refused.levelno == logging.WARNING
    text = refused.getMessage()
    assert "refused for good" in text and "Invitation" in text and PEER in text
    assert "403 not_a_member" in text and seen_ids[1] in text
    engine.dispose()
