"""A bounded load client on raw asyncio streams (HTTP/1.1 keep-alive, about 0.2 ms of CPU per request), so the
client does not eat a 2-core machine the way an httpx client (about 2 ms per request) would.

`measure(url, token, clients, seconds, warm_up, body_for, path, pid)` runs `clients` connections, each posting
one request after another, and reports the rate and latency quantiles of the requests sent after the warm-up;
given the server's `pid`, also the server's CPU time per request over the same window (user + system, all its
threads), the figure that holds when the machine is shared and rates are not comparable between runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse


def receipt(k: int) -> bytes:
    """One unit received into one of 16 lots, with its delivery note: the shape a WMS sends."""
    return json.dumps(
        {
            "type": "receipt",
            "sku": "FORMULA-900G",
            "lot": f"PERF{k % 16}",
            "location": "WH",
            "quantity": 1,
            "expires_on": "2030-01-01",
            "evidence": [{"source": "delivery-note", "reference": f"DN-{k}"}],
        }
    ).encode()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, all its threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> list[str]:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return [str(round(x, 2)) for x in os.getloadavg()]


async def _measure(
    url: str,
    token: str,
    clients: int,
    seconds: float,
    warm_up: float,
    body_for: Callable[[int], bytes],
    path: str,
    pid: int | None,
) -> dict[str, Any]:
    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    latencies: list[float] = []
    codes: dict[int, int] = {}
    state = {"measuring": False, "start": 0.0, "stop": 0.0, "k": 0}
    answered = [0]  # every answer in the window, counted with the server's CPU over the same window

    async def one_client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while True:
            now = time.perf_counter()
            if state["measuring"] and now >= state["stop"]:
                break
            state["k"] += 1
            body = body_for(int(state["k"]))
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sent = time.perf_counter()
            writer.write(head.encode() + body)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.perf_counter()
            code = int(status.split()[1])
            if state["measuring"]:
                answered[0] += 1
            if state["measuring"] and sent >= state["start"]:
                codes[code] = codes.get(code, 0) + 1
                if 200 <= code < 300:
                    latencies.append(done - sent)
        writer.close()

    tasks = [asyncio.create_task(one_client()) for _ in range(clients)]
    await asyncio.sleep(warm_up)
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    begin = time.perf_counter()
    state.update(start=begin, stop=begin + seconds, measuring=True)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    cpu = {"server_cpu_ms": round((cpu_seconds(pid) - cpu_before) * 1000 / max(1, answered[0]), 2)} if pid else {}
    latencies.sort()
    n = len(latencies)

    def quantile(f: float) -> float | None:
        return round(latencies[min(n - 1, int(f * n))] * 1000, 1) if n else None

    return {
        "clients": clients,
        "ok": n,
        "per_s": round(n / elapsed, 1),
        "p50_ms": quantile(0.5),
        "p99_ms": quantile(0.99),
        "codes": codes,
        **cpu,
        "load": load_average(),
    }


def measure(
    url: str,
    token: str,
    clients: int,
    seconds: float,
    warm_up: float = 1.0,
    body_for: Callable[[int], bytes] = receipt,
    path: str = "/ledger/movements",
    pid: int | None = None,
) -> dict[str, Any]:
    return asyncio.run(_measure(url, token, clients, seconds, warm_up, body_for, path, pid))
