"""The operator console in a real Chromium, on real nodes (node/api/console/): a person signs in with the
operator token, finds exactly the five sections, records a receipt, runs the transfer story from request to
receipt, tries a rule book in the sandbox, verifies the anchors, closes the period and approves its statement,
all without a terminal; an auditor's token shows the same pages read-only; forms without the session's CSRF token, or
from an auditor, change nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.helpers import approve_statement, transfers, wait_anchored
from tests.helpers.browser import chromium
from tests.helpers.nodes import HANGZHOU, XIAOSHAN, NodeFactory, RunningNode, soon, stock_up, until

AUDIT_TOKEN = "auditor-of-the-console"
SECTIONS = ["Stock", "Transfers", "Rules", "Audit", "Settlement"]
TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def signed_in(browser: Browser, node: RunningNode, token: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(node.url + "/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/stock$"))
    return page


def test_sign_in_the_five_sections_a_receipt_and_sign_out(nodes: NodeFactory, browser: Browser) -> None:
    hz = nodes.new("hz-console", CONSORTIUM_AUDIT_TOKEN=AUDIT_TOKEN)
    stock_up(hz, [("F1", soon(300), 40)])
    page = browser.new_context().new_page()
    page.goto(hz.url + "/")
    page.get_by_label("Token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("opens nothing")
    page = signed_in(browser, hz, hz.token)
    cookie = next(c for c in page.context.cookies() if c["name"] == "consortium_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    nav = page.get_by_role("navigation", name="Sections").get_by_role("link")
    assert nav.all_inner_texts() == SECTIONS
    for section in SECTIONS:
        nav.filter(has_text=section).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(section)
    # Stock: the lot is there, with its expiry; a receipt through the form lands in the ledger and the table.
    nav.filter(has_text="Stock").click()
    expect(page.locator("section.sku")).to_contain_text("F1")
    form = page.locator("form[action='/console/stock/receipt']")
    form.get_by_label("Lot").fill("F2")
    form.get_by_label("Units").fill("12")
    form.get_by_label("Expires on").fill(soon(200))
    form.locator("input[name=evidence_source]").fill("delivery-note")
    form.locator("input[name=evidence_reference]").fill("DN-42")
    form.get_by_role("button", name="Record receipt").click()
    expect(page.get_by_role("status")).to_contain_text("receipt recorded")
    expect(page.locator("section.sku")).to_contain_text("F2")
    with hz.client() as c:
        assert {(b["lot"], b["quantity"]) for b in c.get("/stock").json()} == {("F1", 40), ("F2", 12)}
    # An adjustment with one piece of evidence is refused, in the node's words, and nothing changes.
    form = page.locator("form[action='/console/stock/adjustment']")
    form.get_by_label("Lot").fill("F2")
    form.get_by_label("Units (+/-)").fill("-2")
    form.locator("input[name=evidence1_source]").fill("cycle-count")
    form.locator("input[name=evidence1_reference]").fill("CC-1")
    form.get_by_role("button", name="Record adjustment").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 2 distinct pieces of evidence")
    with hz.client() as c:
        assert sum(b["quantity"] for b in c.get("/stock").json()) == 52
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.goto(hz.url + "/console/stock")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))


def test_story_one_from_request_to_receipt_verify_and_settle_without_a_terminal(
    nodes: NodeFactory, browser: Browser
) -> None:
    hz = nodes.new("hz-console-story", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new("xs-console-story", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(300), 80)])
    page = signed_in(browser, hz, hz.token)
    page.get_by_role("link", name="Transfers").click()
    with hz.client() as c:  # the store's invitation (its trigger fires after days unmet; here, at once)
        body = {"sku": "FORMULA-900G", "quantity": 30, "needed_by": soon(2), "min_shelf_life_days": 30}
        assert c.post("/negotiation/invitations", json=body).status_code == 201
    until(lambda: len(hz.client().get("/negotiation/offers").json()) == 1)
    page.reload()
    expect(page.locator("table").nth(1)).to_contain_text("xs-console-story: 30 of X1")
    page.get_by_role("button", name="Plan").click()
    expect(page.get_by_role("status")).to_contain_text("planned")
    until(lambda: transfers(hz, "shipped"))
    page.reload()
    # The plan, with what its cost pays for (30 units at 52.00, freight, one truck) and its proof of optimality.
    plan = page.locator("details.plan").first
    expect(plan).to_contain_text("goods 1560.00")
    expect(plan).to_contain_text("Proven the cheapest plan")
    expect(plan).to_contain_text("no transfer at all 30000.00")  # 30 units short at the 1000.00 penalty
    receive = page.locator("form[action$='/receive']")
    receive.get_by_label("units received").fill("30")
    receive.get_by_role("button", name="Receive").click()
    expect(page.get_by_role("status")).to_contain_text("received 30 at WH")
    until(lambda: [t["status"] for t in transfers(xs)] == ["settled"])
    for node in (hz, xs):
        with node.client() as c:
            c.post("/anchoring/flush")
        wait_anchored(node)
    # Audit: verify now against the chain, and the timeline of the SKU.
    page.get_by_role("link", name="Audit").click()
    page.get_by_role("button", name="Verify now against the chain").click()
    expect(page.locator(".verified")).to_contain_text("Every anchored record verifies")
    page.get_by_label("SKU").select_option("FORMULA-900G")
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("main table").nth(1)).to_contain_text("X1")
    # Settlement: the live contribution, then the period closed and signed by both.
    page.get_by_role("link", name="Settlement").click()
    expect(page.locator("figure").first).to_contain_text("xs-console-story")
    # ...and the same metrics day by day (this month so far), each member a series.
    expect(page.locator("svg.columns").first).to_contain_text("xs-console-story")
    page.locator("form[action='/console/settlement/close']").get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("period closed")
    # Closing is not approving: the store's operator approves here, the supplier's through the API.
    expect(page.locator(".statement .status")).to_have_text("awaiting_approval")
    page.locator(".statement").get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("approved")
    (statement,) = httpx.get(f"{hz.url}/settlement/statements").json()
    approve_statement(xs, statement["id"])

    def final() -> bool:
        page.reload()
        return page.locator(".statement .status.final").count() == 1

    assert until(final)
    expect(page.locator(".statement")).to_contain_text("pays")
    expect(page.locator(".statement .approval")).to_contain_text("by its operator")


def test_the_sandbox_runs_a_rule_book_beside_the_one_in_force(nodes: NodeFactory, browser: Browser) -> None:
    hz = nodes.new("hz-console-rules")
    stock_up(hz, [("F1", soon(300), 40)])
    active = httpx.get(f"{hz.url}/rules/active").json()["version"]
    book = httpx.get(f"{hz.url}/rules/books/{active}").text
    page = signed_in(browser, hz, hz.token)
    page.get_by_role("link", name="Rules").click()
    expect(page.locator("main")).to_contain_text(active)
    expect(page.locator("table.matrix")).to_contain_text("consignment")
    # The book in force is there to edit; the edited one runs beside it.
    in_force = yaml.safe_load(page.get_by_label("Rule book").input_value())
    assert in_force == yaml.safe_load(book)
    in_force["pricing"]["shortage_penalty"] = "2000.00"
    page.get_by_label("Rule book").fill(json.dumps(in_force))
    page.get_by_role("button", name="Run the sandbox beside the book in force").click()
    expect(page.locator("#sandbox")).to_contain_text("records replayed")
    expect(page.locator("#sandbox figure")).to_have_count(4)


def test_an_auditor_reads_only_and_a_form_without_the_sessions_csrf_token_changes_nothing(
    nodes: NodeFactory, browser: Browser
) -> None:
    hz = nodes.new("hz-console-audit", CONSORTIUM_AUDIT_TOKEN=AUDIT_TOKEN)
    stock_up(hz, [("F1", soon(300), 40)])
    page = signed_in(browser, hz, AUDIT_TOKEN)
    expect(page.locator("header")).to_contain_text("auditor (read-only)")
    expect(page.locator("section.sku")).to_contain_text("F1")
    assert page.locator("form[action='/console/stock/receipt']").count() == 0
    # The audit token is the consortium's: another member's auditor sees stock, audit and statements, not what
    # this node asks, offers or lends, nor its held drafts and live contributions.
    page.get_by_role("link", name="Transfers").click()
    expect(page.locator("main")).to_contain_text("sign in with its operator token")
    assert page.locator("main table").count() == 0
    cookie = next(c for c in page.context.cookies() if c["name"] == "consortium_console")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    receipt = {"sku": "FORMULA-900G", "lot": "F9", "location": "WH", "quantity": "5", "expires_on": soon(100),
               "csrf": csrf}  # fmt: skip
    jar = {"consortium_console": cookie["value"]}
    refused = httpx.post(f"{hz.url}/console/stock/receipt", data=receipt, cookies=jar)
    assert refused.status_code == 403 and "read-only" in refused.text
    # The operator's session, but a form without its CSRF token (as a forged cross-site post would be).
    operator = signed_in(browser, hz, hz.token)
    jar = {
        "consortium_console": next(c for c in operator.context.cookies() if c["name"] == "consortium_console")["value"]
    }
    forged = httpx.post(f"{hz.url}/console/stock/receipt", data={**receipt, "csrf": "guessed"}, cookies=jar)
    assert forged.status_code == 403
    # No session at all: the body is not even read.
    assert httpx.post(f"{hz.url}/console/stock/receipt", data=receipt).status_code == 401
    with hz.client() as c:
        assert {b["lot"] for b in c.get("/stock").json()} == {"F1"}
