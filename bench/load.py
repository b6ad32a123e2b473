"""A bounded load client on raw asyncio streams (HTTP/1.1 keep-alive, about 0.2 ms of CPU per request), so the
client does not eat a 2-core machine the way an httpx client (about 2 ms per request) would.

`measure(url, token, clients, seconds, warm_up, body_for, path)` runs `clients` connections, each posting one
request after another, and reports the rate and latency quantiles of the requests sent after the warm-up.
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


def load_average() -> list[str]:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return [str(round(x, 2)) for x in os.getloadavg()]


async def _measure(
    url: str, token: str, clients: int, seconds: float, warm_up: float, body_for: Callable[[int], bytes], path: str
) -> dict[str, Any]:
    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    latencies: list[float] = []
    codes: dict[int, int] = {}
    state = {"measuring": False, "start": 0.0, "stop": 0.0, "k": 0}

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
            if state["measuring"] and sent >= state["start"]:
                codes[code] = codes.get(code, 0) + 1
                if 200 <= code < 300:
                    latencies.append(done - sent)
        writer.close()

    tasks = [asyncio.create_task(one_client()) for _ in range(clients)]
    await asyncio.sleep(warm_up)
    begin = time.perf_counter()
    state.update(start=begin, stop=begin + seconds, measuring=True)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
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
) -> dict[str, Any]:
    return asyncio.run(_measure(url, token, clients, seconds, warm_up, body_for, path))
