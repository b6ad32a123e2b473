"""Signed offers admitted by a requester's node, `POST /negotiation/messages`, beside the floor of the same run:
EIP-712 signature recovery alone on this machine.

Two real nodes on Anvil: Hangzhou invites, Xiaoshan answers with a real offer. The bench then signs copies of that
offer with Xiaoshan's key (each a new id and nonce, all valid: a supplier may offer several lots on one
invitation) and posts them to Hangzhou with the raw load client: every one is checked (signature, replay,
deadline, membership, rule book in force, the invitation open) and stored.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from web3 import Web3

from bench.chainkit import bench_nodes
from bench.common import machine, profiler
from bench.load import measure
from negotiation.messages import Domain, parse, recover_signer
from node.settings import NodeSettings
from tests.helpers.messages import signed_copies
from tests.helpers.nodes import HANGZHOU, XIAOSHAN, soon, stock_up, until


def recovery_rate(domain: Domain, bodies: list[bytes], seconds: float = 2.0) -> float:
    envelopes = [parse(json.loads(b)) for b in bodies]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        m = envelopes[done % len(envelopes)]
        recover_signer(domain, m.type, m.message, m.signature)
        done += 1
    return done / (time.perf_counter() - start)


PATH = "/negotiation/messages"


def _each_once(bodies: list[bytes]) -> Callable[[int], bytes]:
    """A new signed offer for each request (a nonce is admitted once)."""
    remaining = iter(bodies)
    return lambda _k: _next(remaining)


def _next(remaining: Iterator[bytes]) -> bytes:
    try:
        return next(remaining)
    except StopIteration:
        raise RuntimeError("the bench sent every signed offer it made: give run() more copies") from None


class Batches:
    """A batch of `size` new signed offers for each request, as a peer's outbox sends them; counts what it sent."""

    def __init__(self, bodies: list[bytes], size: int) -> None:
        self.remaining = iter(bodies)
        self.size = size
        self.sent = 0

    def __call__(self, _k: int) -> bytes:
        self.sent += self.size
        return b'{"messages":[' + b",".join(_next(self.remaining) for _ in range(self.size)) + b"]}"


def _admitted(db_path: Any, signer: str) -> int:
    with sqlite3.connect(db_path) as db:
        (n,) = db.execute(
            "SELECT count(*) FROM negotiationmessage WHERE type = 'Offer' AND signer = ?", (signer,)
        ).fetchone()
    return int(n)


def run(
    clients: tuple[int, ...] = (1, 8),
    seconds: float = 8.0,
    follow: tuple[bool, ...] = (True, False),
    profile: str | None = None,
    batch: int = 100,
    copies: int = 60_000,
) -> list[dict[str, Any]]:
    """`clients`: peers posting one message a request. `batch`: then `batch` messages a request to the batch
    inbox, with 1 and 2 peers posting (0: not measured). `copies`: signed offers made beforehand (each is sent
    once; 40,000 last about 16 s at 1,000 a second). `profile`: a file to write a py-spy profile of the
    requester's node to, while the first measure runs (with no `clients`, the first batches)."""
    rows: list[dict[str, Any]] = []
    with bench_nodes("offers-") as (chain, factory, _tmp):
        for followed in follow:
            every = NodeSettings.model_fields["chain_follow_seconds"].default if followed else 0
            env = {"CONSORTIUM_CHAIN_FOLLOW_SECONDS": str(every)}
            tag = "followed" if followed else "asked"
            hz = factory.new(f"hz-{tag}", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1], **env)
            xs = factory.new(f"xs-{tag}", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1], **env)
            stock_up(hz, [])
            stock_up(xs, [("L1", soon(400), 1_000_000)])
            needed = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
            with hz.client() as c:
                c.post("/negotiation/invitations", json={"sku": "FORMULA-900G", "quantity": 10, "needed_by": needed})
                # Xiaoshan's offer (the other pairs' suppliers, still registered, may offer too).
                me = xs.address
                until(lambda c=c, me=me: [o for o in c.get("/negotiation/offers").json() if o["supplier"] == me])
            with sqlite3.connect(hz.db_path) as db:
                (envelope,) = db.execute(
                    "SELECT envelope FROM negotiationmessage WHERE type = 'Offer' AND signer = ?", (xs.address,)
                ).fetchone()
            w3 = Web3(Web3.HTTPProvider(chain.anvil.rpc_url))
            domain = Domain("consortium-inventory", int(w3.eth.chain_id), chain.deployment.registry)
            bodies = signed_copies(json.loads(envelope), domain, xs.key, copies)
            floor = recovery_rate(domain, bodies)
            hz_pid = hz.process.proc.pid if hz.process.proc is not None else None
            fresh = _each_once(bodies)
            warm = min(1.0, seconds / 5)
            spy = profiler(hz_pid, profile, seconds + warm) if profile and hz_pid else None  # the first measure
            for n in clients:
                got = measure(hz.url, hz.token, n, seconds, warm, fresh, PATH, hz_pid)
                if spy is not None:
                    spy.wait()
                    spy = None
                rows.append({"what": f"offers in, membership and rule book {tag}", **got,
                             "recoveries_per_s_one_core": round(floor)})  # fmt: skip
            batches = Batches(bodies[len(bodies) // 2 :], batch)  # the single requests took from the front
            for n in (1, 2) if batch and followed else ():
                before, sent = _admitted(hz.db_path, xs.address), batches.sent
                got = measure(hz.url, hz.token, n, seconds, warm, batches, PATH + "/batch", hz_pid)
                if spy is not None:
                    spy.wait()
                    spy = None
                # Every message sent (warm-up included) admitted: a batch answers 200 whatever each message got.
                all_admitted = _admitted(hz.db_path, xs.address) - before == batches.sent - sent
                rows.append({"what": f"offers in, batches of {batch}, {tag}", **got,
                             "messages_per_s": round(got["per_s"] * batch, 1),
                             "server_cpu_ms_per_message": round(got["server_cpu_ms"] / batch, 3),
                             "all_admitted": all_admitted, "recoveries_per_s_one_core": round(floor)})  # fmt: skip
    return rows


if __name__ == "__main__":
    print(machine())
    for row in run():
        print(json.dumps(row), flush=True)
