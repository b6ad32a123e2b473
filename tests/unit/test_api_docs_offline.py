"""/docs and /redoc work on an offline site: every asset they load is served by the node itself."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from node.api.app import create_app
from node.settings import NodeSettings

Get = Callable[[str], httpx.Response]


@pytest.fixture
def get(tmp_path: Path) -> Get:
    # No chain, no registry: the app is only asked for its documentation pages (its lifespan is not run).
    app = create_app(NodeSettings(database_url=f"sqlite:///{tmp_path / 'node.db'}", anchor_enabled=False))
    return lambda url: asyncio.run(_get(app, url))


async def _get(app: FastAPI, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as client:
        return await client.get(url)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_documentation_pages_load_nothing_from_another_host(get: Get, page: str) -> None:
    html = get(page)
    assert html.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", html.text)
    urls = [a or b for a, b in assets]
    assert urls, "the page names no asset"
    assert not [u for u in urls if re.match(r"^(https?:)?//", u)], urls
    for url in urls:
        assert get(url).status_code == 200, url
