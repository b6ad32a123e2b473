"""Peers in-process: several nodes' FastAPI apps in the test's own process, reaching each other through a
routing `httpx` transport instead of sockets, on the real chain (Anvil) all the same.

`httpx.ASGITransport` is async-only and a node's PeerClient (chain/peers.py: its outbox, rule book and settlement
fetches) wraps a sync `httpx.Client`, so `PeerRouter` is a sync transport: it finds the app registered for a
request's origin (the URL the member registry gives for that member's node) and runs the request through that
app's `httpx.ASGITransport` in an event loop of its own.

Workers: a node's background workers (outbox delivery, trigger, planning) run only inside `node.running()`.
Without it nothing moves by itself and a test delivers step by step with `node.deliver()`, which is
deterministic.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from fastapi import FastAPI

from chain.deploy import Deployment
from chain.registry_client import MemberRegistryClient, Role
from node.api.app import create_app
from node.services.container import NodeServices
from node.services.negotiator import Negotiator
from node.services.steps import StepGroups
from node.settings import NodeSettings
from tests.helpers.nodes import ADMIN_KEY, TEST_RULEBOOK, fund_new_key

DEFAULT_PORTS = {"http": 80, "https": 443}
# Hop-by-hop or already undone by the inner client: the body handed back is the decoded one.
DROPPED_RESPONSE_HEADERS = {"content-encoding", "transfer-encoding", "connection"}

Origin = tuple[str, str, int]


def origin(url: httpx.URL | str) -> Origin:
    url = httpx.URL(url)
    return url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme]


class PeerRouter(httpx.BaseTransport):
    """A sync transport routing each request by scheme, host and port to the in-process app mounted there.
    An origin with no app fails like a refused connection (`httpx.ConnectError`), as a node that is down."""

    def __init__(self) -> None:
        self._apps: dict[Origin, httpx.ASGITransport] = {}

    def mount(self, url: str, app: FastAPI) -> None:
        # A peer sees a server's answer, never its traceback: a crash in the app comes back as a 500.
        # ASGITransport never runs the app's lifespan: workers start only in `InProcessNode.running`.
        self._apps[origin(url)] = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def unmount(self, url: str) -> None:
        self._apps.pop(origin(url), None)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._apps.get(origin(request.url))
        if transport is None:
            raise httpx.ConnectError(f"no in-process node at {request.url.scheme}://{request.url.netloc.decode()}")
        # Each caller (the test, an outbox worker thread) runs the app in a loop of its own: no loop is shared.
        return asyncio.run(_through(transport, request))

    def close(self) -> None:
        """Every node's peer client shares this transport and closes it when the node stops: the router
        outlives them; its apps are unmounted by `InProcessNetwork.close`."""


async def _through(transport: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
    inner = httpx.Request(request.method, request.url, headers=request.headers, content=request.read())
    answer = await transport.handle_async_request(inner)
    body = await answer.aread()
    headers = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in DROPPED_RESPONSE_HEADERS]
    return httpx.Response(answer.status_code, headers=headers, content=body)


@dataclass
class InProcessNode:
    name: str
    key: str
    url: str  # its public URL, as the member registry holds it
    settings: NodeSettings
    services: NodeServices
    app: FastAPI
    client: httpx.Client  # the operator's, with the bearer token

    @property
    def address(self) -> str:
        return self.services.address

    @property
    def steps(self) -> StepGroups:
        return self.services.negotiating().steps

    @property
    def negotiator(self) -> Negotiator:
        return self.services.negotiating().negotiator

    @contextmanager
    def running(self) -> Iterator[None]:
        """The node's background workers run (as under the app's lifespan) until the block ends."""
        self.services.start()
        try:
            yield
        finally:
            self.services.stop()

    def stock(self) -> dict[tuple[str, str], int]:
        """Balances by (lot, status), as the operator sees them."""
        return {(b["lot"], b["status"]): b["quantity"] for b in self.client.get("/stock").json()}

    def deliver(self) -> int:
        """One pass of the outbox worker, on the caller's thread: how many messages the peers accepted."""
        return self.negotiator.outbox.deliver()


@dataclass
class InProcessNetwork:
    """Nodes registered on the chain's member registry under fake public URLs, served by `router`."""

    rpc_url: str
    deployment: Deployment
    base: Path
    router: PeerRouter = field(default_factory=PeerRouter)
    nodes: list[InProcessNode] = field(default_factory=list)

    def registry(self) -> MemberRegistryClient:
        return MemberRegistryClient(self.rpc_url, self.deployment.registry, ADMIN_KEY)

    def peer_client(self) -> httpx.Client:
        """An `httpx.Client` that reaches the in-process nodes by their public URLs (as a peer would); a node's
        services wrap it in their PeerClient."""
        return httpx.Client(transport=self.router, timeout=10)

    def node(self, name: str, lat_e6: int, lon_e6: int, register: bool = True, **settings: Any) -> InProcessNode:
        """A node with a fresh funded key, its own SQLite file and public URL http://<name>.local:80,
        registered on-chain (unless `register` is false) as a partner at (lat_e6, lon_e6). Anchoring is off
        unless `anchor_enabled=True` is passed; any other NodeSettings field may be overridden likewise."""
        key = fund_new_key(self.rpc_url)
        url = f"http://{name}.local:80"
        if register:
            address = Account.from_key(key).address
            self.registry().add_member(address, name, Role.PARTNER, url, lat_e6, lon_e6)
        token = secrets.token_hex(8)
        config = NodeSettings(
            **{
                "node_name": name,
                "database_url": f"sqlite:///{self.base / name / 'node.db'}",
                "api_token": token,
                "private_key": key,
                "public_url": url,
                "rpc_url": self.rpc_url,
                "registry_address": self.deployment.registry,
                "anchor_address": self.deployment.anchors,
                "anchor_enabled": False,
                "rules_address": self.deployment.rules,
                "rulebook_file": str(TEST_RULEBOOK),
                "chain_retry_max_seconds": 0.5,
                **settings,
            }
        )
        services = NodeServices(config, peer_client=self.peer_client())
        app = create_app(config, services)
        self.router.mount(url, app)
        client = httpx.Client(
            transport=self.router, base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        node = InProcessNode(name, key, url, config, services, app, client)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        """Stop every node (again, if a test ran its workers) and take it off the registry: later tests
        on the same chain must not invite it."""
        registry = self.registry()
        for node in self.nodes:
            self.router.unmount(node.url)
            node.client.close()
            node.services.stop()
            if registry.member(node.address).active:
                registry.remove_member(node.address)
        self.nodes.clear()
