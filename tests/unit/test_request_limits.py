"""Bodies are bounded before anything parses them: a deep or huge body is refused with a 4xx and the node
stays up; an operator body is not read without the operator's token."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from node.api.limits import MAX_DEPTH, MAX_MESSAGE_BYTES, RequestLimits, TokenBucket, json_depth_exceeds

TOKEN = "s3cret-operator-token"


def app() -> Any:
    inner = FastAPI()

    @inner.post("/negotiation/messages")
    async def messages(request: Request) -> dict[str, Any]:
        return {"parsed": type(json.loads(await request.body())).__name__}

    @inner.post("/skus")
    async def skus(request: Request) -> dict[str, Any]:
        return {"parsed": type(json.loads(await request.body())).__name__}

    return RequestLimits(inner, lambda: TOKEN)


def post(path: str, body: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://node") as c:
            return await c.post(path, content=body, headers=headers)

    return asyncio.run(go())


def test_a_body_nested_32000_deep_is_refused_before_it_is_parsed() -> None:
    # As py_ecc sets it in a node: there, parsing this body overflowed the C stack and killed the process.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        deep = b"[" * (MAX_MESSAGE_BYTES // 2 - 1) + b"]" * (MAX_MESSAGE_BYTES // 2 - 1)  # under the size limit
        r = post("/negotiation/messages", deep)
        assert r.status_code == 422 and r.json()["error"] == "too_deep"
        assert post("/negotiation/messages", b'{"a": [1, {"b": "]]]"}]}').json() == {"parsed": "dict"}
    finally:
        sys.setrecursionlimit(previous)


def test_a_message_larger_than_the_limit_is_refused_with_413() -> None:
    big = json.dumps({"pad": "x" * MAX_MESSAGE_BYTES}).encode()
    r = post("/negotiation/messages", big)
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_an_operator_body_is_not_read_without_the_token() -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    for token in (None, "wrong"):
        r = post("/skus", deep, token)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert post("/skus", b"[[1]]", TOKEN).json() == {"parsed": "list"}
    assert post("/skus", deep, TOKEN).json()["error"] == "too_deep"


@pytest.mark.parametrize(
    ("body", "deeper"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, False),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), True),
        (b'{"s": "' + b"[" * 500 + b'"}', False),  # brackets inside a string do not nest
        (b'{"s": "\\"' + b"[" * 500 + b'"}', False),  # an escaped quote does not end the string
        (b'{"s": "\\\\"}' + b"[" * (MAX_DEPTH + 1), True),  # an escaped backslash does not escape the quote
    ],
)
def test_depth_counts_structure_only(body: bytes, deeper: bool) -> None:
    assert json_depth_exceeds(body, MAX_DEPTH) is deeper


def test_the_node_app_refuses_deep_large_and_unauthenticated_bodies_and_stays_up(tmp_path: Any) -> None:
    from node.api.app import create_app
    from node.settings import NodeSettings

    node = create_app(
        NodeSettings(database_url=f"sqlite:///{tmp_path / 'node.db'}", api_token=TOKEN, anchor_enabled=False)
    )

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=node), base_url="http://node") as c:
            deep = b"[" * 30_000 + b"]" * 30_000
            return [
                await c.post("/negotiation/messages", content=deep),
                await c.post("/negotiation/messages", content=b"[" + b"0," * MAX_MESSAGE_BYTES + b"0]"),
                await c.post("/skus", content=deep),
                await c.post("/skus", json={"code": "A", "name": "A"}, headers={"Authorization": f"Bearer {TOKEN}"}),
                await c.get("/health"),
            ]

    deep, large, unauthenticated, fine, health = asyncio.run(go())
    assert (deep.status_code, deep.json()["error"]) == (422, "too_deep")
    assert (large.status_code, large.json()["error"]) == (413, "too_large")
    assert (unauthenticated.status_code, unauthenticated.json()["error"]) == (401, "unauthorized")
    assert deep.headers["x-request-id"]  # refused unread, and still answered with its request id
    assert fine.status_code == 201 and health.json()["status"] == "ok"


def test_a_token_bucket_lets_a_burst_through_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(per_second=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take("a") for _ in range(4)] == [True, True, True, False]
    assert bucket.take("b")  # each client its own bucket
    now[0] += 0.5  # one token back at 2 a second
    assert [bucket.take("a") for _ in range(2)] == [True, False]
    now[0] += 100.0  # never more than the burst
    assert [bucket.take("a") for _ in range(4)] == [True, True, True, False]


def test_a_token_bucket_forgets_full_buckets_beyond_its_bound() -> None:
    now = [0.0]
    bucket = TokenBucket(per_second=1.0, burst=2, clock=lambda: now[0])
    bucket.MAX_KEYS = 10
    for client in range(10):
        bucket.take(str(client))
    now[0] += 5.0  # all refilled
    bucket.take("new")
    assert len(bucket._buckets) == 1
