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
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from web3 import Web3

from bench.chainkit import bench_nodes
from bench.common import machine
from bench.load import measure
from negotiation.messages import Domain, new_id, new_nonce, parse, recover_signer, sign
from node.launch.nodes import HANGZHOU, XIAOSHAN, soon, stock_up, until
from node.settings import NodeSettings


def signed_copies(template: dict[str, Any], domain: Domain, key: str, n: int) -> list[bytes]:
    offer = parse(template)
    out = []
    for _ in range(n):
        message = {**offer.message, "id": new_id(), "nonce": new_nonce()}
        out.append(json.dumps(sign(domain, "Offer", message, key).as_json()).encode())
    return out


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
    return lambda _k: next(remaining)


def _profiler(proc: Any, out: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy (on the PATH) sampling the node while it holds the GIL, written as raw stacks to `out`."""
    duration = str(int(seconds) + 1)
    command = ["py-spy", "record", "-p", str(proc.pid), "-o", out, "-f", "raw", "-d", duration, "-r", "200", "--gil"]
    return subprocess.Popen(command)


def run(
    clients: tuple[int, ...] = (1, 8),
    seconds: float = 8.0,
    follow: tuple[bool, ...] = (True, False),
    profile: str | None = None,
) -> list[dict[str, Any]]:
    """`profile`: a file to write a py-spy profile of the requester's node to (py-spy on the PATH)."""
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
            bodies = signed_copies(json.loads(envelope), domain, xs.key, 20_000)
            floor = recovery_rate(domain, bodies)
            spy = _profiler(hz.process.proc, profile, seconds) if profile else None
            fresh = _each_once(bodies)
            for n in clients:
                got = measure(hz.url, hz.token, n, seconds, min(1.0, seconds / 5), fresh, PATH)
                rows.append({"what": f"offers in, membership and rule book {tag}", **got,
                             "recoveries_per_s_one_core": round(floor)})  # fmt: skip
            if spy is not None:
                spy.wait()
    return rows


if __name__ == "__main__":
    print(machine())
    for row in run():
        print(json.dumps(row), flush=True)
