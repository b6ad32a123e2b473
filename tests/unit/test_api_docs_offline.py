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


def test_redoc_refuses_images_from_other_hosts(get: Get) -> None:
    # ReDoc's bundle names Redocly's logo on their CDN; the policy keeps the browser from fetching it.
    page = get("/redoc")
    assert page.headers["content-security-policy"] == "img-src 'self' data:"
    bundle = get("/static-offline-docs/redoc.standalone.js")
    assert "https://cdn.redoc.ly/" in bundle.text, "the bundle changed: check whether the policy is still needed"


def test_the_favicon_is_served_and_linked_by_the_docs_and_the_console(get: Get) -> None:
    icon = get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00", "not an ICO file"
    for page in ("/docs", "/redoc", "/console/sign-in"):
        assert re.search(r"""<link rel="(?:shortcut )?icon" href="/favicon.ico">""", get(page).text), page
