"""A rule change made in the console, in a real Chromium, on its own chain (the book in force changes):
headquarters holds an edited book, proposes and approves it; a partner approves it on its own console; both
see it in force. No terminal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.helpers.browser import chromium
from tests.helpers.nodes import ADMIN_KEY, NodeFactory, RunningNode, soon, stock_up, until


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def rules_page(browser: Browser, node: RunningNode) -> Page:
    page = browser.new_context().new_page()
    page.goto(node.url + "/console/sign-in")
    page.get_by_label("Token").fill(node.token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Rules").click()
    return page


def hold_and_propose(page: Page, book: dict[str, object]) -> str:
    """Paste a book, hold it, propose it; returns its version (as the node said it)."""
    page.get_by_label("Rule book").fill(json.dumps(book))
    page.get_by_role("button", name="Hold it here (then propose)").click()
    held = page.get_by_role("status").inner_text()
    version = re.search(r"0x[0-9a-f]{64}", held)
    assert version is not None, held
    page.locator(f"form[action='/console/rules/{version.group()}/propose']").get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("proposed")
    return version.group()


def approve(page: Page, version: str) -> str:
    page.locator(f"form[action='/console/rules/{version}/approve']").get_by_role("button").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("approved")
    return status.inner_text()


def in_force(node: RunningNode) -> str:
    # A node answering this may first fetch the new book from a member's node (a peer call): slow, not hung,
    # when two suites share two cores.
    return str(httpx.get(f"{node.url}/rules/active", timeout=30).json()["version"])


def test_a_rule_change_proposed_at_headquarters_and_approved_by_a_partner_comes_into_force(
    nodes: NodeFactory, browser: Browser
) -> None:
    hq = nodes.new("hq-rules", key=ADMIN_KEY)  # the genesis book's approver
    hz = nodes.new("hz-rules")
    stock_up(hz, [("F1", soon(300), 10)])
    hq_page = rules_page(browser, hq)
    genesis = yaml.safe_load(hq_page.get_by_label("Rule book").input_value())
    # First change, under the genesis governance (headquarters alone): the partner becomes an approver.
    governed = {**genesis, "label": "with the store", "governance": {
        **genesis["governance"], "approvers": [hq.address, hz.address], "quorum": 2, "required": [hq.address],
    }}  # fmt: skip
    first = hold_and_propose(hq_page, governed)
    assert "in force from block" in approve(hq_page, first)
    until(lambda: in_force(hz) == first)
    # Second change, under the first: headquarters' approval is not enough; the store's completes it.
    second = hold_and_propose(hq_page, {**governed, "label": "second"})
    assert "more approvals are needed" in approve(hq_page, second)
    assert in_force(hz) == first
    hz_page = rules_page(browser, hz)
    expect(hz_page.locator("main")).to_contain_text("with the store")
    approved = approve(hz_page, second)
    since = re.search(r"in force from block (\d+)", approved)
    assert since is not None, approved
    until(lambda: in_force(hz) == second and in_force(hq) == second)
    hz_page.goto(hz.url + "/console/rules")
    expect(hz_page.locator("#in-force")).to_contain_text("In force: second")
    # The block it came into force at, not the block the node last read the chain at (blocks go on).
    expect(hz_page.locator("#in-force")).to_contain_text(f"since block {since.group(1)} (the chain read at block")
