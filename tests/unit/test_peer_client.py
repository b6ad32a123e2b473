"""The one client every node-to-node call goes through (chain/peers.py): each call's request as the node expects
it, its typed answer, and the three ways a call fails (no answer, a status that is not 2xx, an answer of the
wrong shape), each under chain/errors.py's root. The peer is an httpx MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from chain.errors import ChainError
from chain.peers import (
    MessageAnswer,
    PeerAnsweredError,
    PeerAnswerMalformed,
    PeerClient,
    PeerError,
    PeerUnreachable,
    Timeouts,
)

NODE = "http://peer.local:80/"
TIMEOUTS = Timeouts(message=1.5, rule_book=2.5, statement=3.5, audit_page=4.5, operator=5.5)
ENVELOPE = json.dumps({"type": "Invitation", "message": {"id": "0x01"}, "signature": "0xsig"})


def peer(
    answer: Callable[[httpx.Request], httpx.Response], token: str | None = "audit-t"
) -> tuple[PeerClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return PeerClient(httpx.Client(transport=httpx.MockTransport(handle)), token, TIMEOUTS), seen


def waited(request: httpx.Request) -> float:
    return float(request.extensions["timeout"]["read"])


def test_a_message_goes_to_the_inbox_with_its_request_id_and_no_token() -> None:
    client, seen = peer(lambda _r: httpx.Response(202, json={"accepted": "Invitation", "id": "0x01"}))
    answer = client.post_message(NODE, ENVELOPE, "req-1")
    assert isinstance(answer, MessageAnswer) and answer.status == 202 and answer.error == ""
    assert json.loads(answer.body) == {"accepted": "Invitation", "id": "0x01"}
    [sent] = seen
    assert (sent.method, str(sent.url)) == ("POST", "http://peer.local/negotiation/messages")
    assert sent.content == ENVELOPE.encode()
    assert sent.headers["X-Request-ID"] == "req-1" and sent.headers["Content-Type"] == "application/json"
    assert "Authorization" not in sent.headers  # signed messages are public: the audit token stays home
    assert waited(sent) == TIMEOUTS.message


def test_a_refused_message_keeps_its_status_code_body_and_request_id() -> None:
    body = {"error": "not_a_member", "message": "no such member", "detail": {}}
    client, _ = peer(lambda _r: httpx.Response(403, json=body, headers={"X-Request-ID": "req-2"}))
    with pytest.raises(PeerAnsweredError) as caught:
        client.post_message(NODE, ENVELOPE, "req-2")
    refused = caught.value
    assert (refused.status, refused.error, refused.explanation) == (403, "not_a_member", "no such member")
    assert json.loads(refused.body) == body and refused.request_id == "req-2"
    assert refused.url == "http://peer.local:80/negotiation/messages"
    assert str(refused) == f"{refused.url} answered 403 not_a_member: no such member (request req-2)"


def test_an_answer_that_is_no_error_body_keeps_its_text() -> None:
    client, _ = peer(lambda _r: httpx.Response(502, text="bad\n  gateway"))
    with pytest.raises(PeerAnsweredError) as caught:
        client.post_message(NODE, ENVELOPE)
    assert (caught.value.status, caught.value.error, caught.value.body) == (502, "", "bad\n  gateway")
    assert str(caught.value).endswith("answered 502 bad gateway")


def test_a_batch_goes_in_one_request_and_each_message_takes_its_own_answer() -> None:
    results = [
        {"status": 202, "body": {"accepted": "Invitation", "id": "0x01"}},
        {"status": 409, "body": {"error": "replayed", "message": "seen", "detail": {}}},
    ]
    client, seen = peer(lambda _r: httpx.Response(200, json={"results": results}))
    answers = client.post_messages(NODE, [ENVELOPE, ENVELOPE], "req-3")
    assert [(a.status, a.error) for a in answers] == [(202, ""), (409, "replayed")]
    assert json.loads(answers[1].body) == results[1]["body"]
    [sent] = seen
    assert str(sent.url) == "http://peer.local/negotiation/messages/batch" and sent.headers["X-Request-ID"] == "req-3"
    assert json.loads(sent.content) == {"messages": [json.loads(ENVELOPE)] * 2}


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"results": [{"status": 202, "body": {}}]}),  # one result for two messages
        httpx.Response(200, json={"accepted": 2}),  # no results at all
        httpx.Response(200, json={"results": [{"status": 202, "body": "ok"}] * 2}),  # a body that is no object
        httpx.Response(200, text="<html>ok</html>"),
    ],
)
def test_a_batch_answer_without_one_result_per_message_is_malformed(answer: httpx.Response) -> None:
    client, _ = peer(lambda _r: answer)
    with pytest.raises(PeerAnswerMalformed):
        client.post_messages(NODE, [ENVELOPE, ENVELOPE])


def test_a_batch_refused_as_a_whole_keeps_its_status() -> None:
    client, _ = peer(lambda _r: httpx.Response(404, json={"detail": "Not Found"}))
    with pytest.raises(PeerAnsweredError) as caught:
        client.post_messages(NODE, [ENVELOPE, ENVELOPE])
    assert caught.value.status == 404 and caught.value.error == ""


def test_a_rule_book_is_asked_by_its_quoted_version_without_the_token() -> None:
    client, seen = peer(lambda _r: httpx.Response(200, json={"format": 1, "name": "book"}))
    assert client.rule_book(NODE, "0xab/cd") == {"format": 1, "name": "book"}
    [sent] = seen
    assert sent.url.raw_path == b"/rules/books/0xab%2Fcd" and "Authorization" not in sent.headers
    assert waited(sent) == TIMEOUTS.rule_book


def test_a_rule_book_that_is_no_json_object_is_malformed() -> None:
    client, _ = peer(lambda _r: httpx.Response(200, json=["not", "a", "book"]))
    with pytest.raises(PeerAnswerMalformed, match="a JSON list, not an object"):
        client.rule_book(NODE, "0xab")


def test_a_statement_is_fetched_with_the_audit_token() -> None:
    client, seen = peer(lambda _r: httpx.Response(200, json={"id": "0xs", "format": 1}))
    assert client.statement_document(NODE, "0xs") == {"id": "0xs", "format": 1}
    [sent] = seen
    assert str(sent.url) == "http://peer.local/settlement/statements/0xs"
    assert sent.headers["Authorization"] == "Bearer audit-t" and waited(sent) == TIMEOUTS.statement


def test_without_a_token_no_authorization_is_sent() -> None:
    client, seen = peer(lambda _r: httpx.Response(200, json={"id": "0xs"}), token=None)
    client.statement_document(NODE, "0xs")
    assert "Authorization" not in seen[0].headers


def test_a_statement_the_node_does_not_hold_keeps_its_status() -> None:
    body = {"error": "not_found", "message": "no statement 0xs", "detail": {}}
    client, _ = peer(lambda _r: httpx.Response(404, json=body))
    with pytest.raises(PeerAnsweredError) as caught:
        client.statement_document(NODE, "0xs")
    assert (caught.value.status, caught.value.error) == (404, "not_found")


def test_the_audit_pages_are_typed_and_carry_the_token() -> None:
    identity: dict[str, object] = {
        "node": "n",
        "address": "0x" + "12" * 20,
        "registry": None,
        "anchor_contract": "0xa",
        "kinds": [],
    }
    page = {"format": "consortium-proof/1", "kind": "ledger", "items": [{"record": {"seq": 1}}], "next_after": None}
    balance = {
        "sku": "S",
        "lot": "L",
        "location": "W",
        "owner": "0x1",
        "holder": "0x1",
        "status": "free",
        "quantity": 3,
    }
    answers = {"/audit/identity": identity, "/audit/records": page, "/audit/balances": [balance]}
    client, seen = peer(lambda r: httpx.Response(200, json=answers[r.url.path]))
    assert client.audit_identity(NODE) == identity
    assert client.audit_page(NODE, "ledger", 7, 50) == page
    assert client.audit_balances(NODE) == [balance]
    assert dict(seen[1].url.params) == {"kind": "ledger", "after": "7", "limit": "50"}
    assert all(r.headers["Authorization"] == "Bearer audit-t" and waited(r) == TIMEOUTS.audit_page for r in seen)


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        ("identity", {"node": "n", "registry": None}),  # no address
        ("page", {"format": "consortium-proof/1", "items": "none", "next_after": None}),
        ("page", {"format": "consortium-proof/1", "items": [], "next_after": "7"}),
        ("page", {"format": "consortium-proof/1", "items": []}),
        ("balances", {"sku": "S"}),
        ("balances", ["S"]),
    ],
)
def test_an_audit_page_of_the_wrong_shape_is_malformed(call: str, answer: object) -> None:
    client, _ = peer(lambda _r: httpx.Response(200, json=answer))
    read = {
        "identity": lambda: client.audit_identity(NODE),
        "page": lambda: client.audit_page(NODE, "ledger", 0, 10),
        "balances": lambda: client.audit_balances(NODE),
    }[call]
    with pytest.raises(PeerAnswerMalformed):
        read()


def test_an_operator_call_sends_json_with_the_token_and_reads_json() -> None:
    client, seen = peer(lambda _r: httpx.Response(200, json={"version": "0xv"}), token="op-t")
    assert client.call("POST", NODE, "/rules/books", {"name": "book"}) == {"version": "0xv"}
    [sent] = seen
    assert (sent.method, str(sent.url)) == ("POST", "http://peer.local/rules/books")
    assert json.loads(sent.content) == {"name": "book"} and sent.headers["Authorization"] == "Bearer op-t"
    assert waited(sent) == TIMEOUTS.operator


def test_an_operator_call_answered_with_no_json_is_malformed() -> None:
    client, _ = peer(lambda _r: httpx.Response(200, text="<html>"))
    with pytest.raises(PeerAnswerMalformed, match="no JSON"):
        client.call("GET", NODE, "/settlement/statements")


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("connection refused"), httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("cut")],
)
def test_no_answer_is_unreachable_and_names_its_cause(failure: httpx.HTTPError) -> None:
    def fail(_r: httpx.Request) -> httpx.Response:
        raise failure

    client, _ = peer(fail)
    with pytest.raises(PeerUnreachable) as caught:
        client.post_message(NODE, ENVELOPE)
    assert caught.value.reason == f"{type(failure).__name__}: {failure}"
    assert str(caught.value).startswith("cannot reach http://peer.local:80/negotiation/messages: ")
    assert caught.value.__cause__ is failure


def test_a_url_that_is_no_url_is_unreachable() -> None:
    client, seen = peer(lambda _r: httpx.Response(200, json={}))
    with pytest.raises(PeerUnreachable):
        client.rule_book("http://", "0xab")
    with pytest.raises(PeerUnreachable):
        client.rule_book("", "0xab")
    assert seen == []


def test_every_peer_error_is_a_chain_error() -> None:
    for kind in (PeerUnreachable, PeerAnsweredError, PeerAnswerMalformed):
        assert issubclass(kind, PeerError) and issubclass(kind, ChainError)


def test_the_client_closes_the_http_client_it_wraps() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200)))
    with PeerClient(http):
        pass
    assert http.is_closed
