"""The console's pages and forms (node/api/console/__init__.py). Each page gathers what it shows through the
JSON API's own route functions and the node's services; each form calls the same code as the matching API
endpoint and redirects back to its page with what happened (or the node's error, word for word)."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from chain.auditor import audit_source, from_node
from chain.errors import AuditSourceError, ChainError
from chain.records import RecordType
from negotiation.matching import Allocation, ProblemError, cost_breakdown, greedy, parse_problem
from node.api.console import session as sessions
from node.api.console.charts import bars, columns
from node.api.console.session import COOKIE, ConsoleSession
from node.api.deps import services_of
from node.api.routes import audit as audit_api
from node.api.routes import ledger as ledger_api
from node.api.routes import negotiation as negotiation_api
from node.api.schemas import FlowKeyIn, InvitationIn, MovementIn, ReplenishmentIn
from node.domain.ledger import MovementType, replay
from node.errors import InvalidRequest, NodeError, RequestError
from node.services.anchoring import waiting_records
from node.services.approvals import FlowKey
from node.services.container import NodeServices
from node.services.rules_keeper import conflict_json, decisions_now
from node.store.engine import session_scope
from node.store.records import LEDGER
from node.store.tables import Location, Lot, Record, Sku, StockBalance

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)
root = APIRouter(include_in_schema=False)

# The navigation, exactly these sections, in this order.
SECTIONS = ("stock", "transfers", "rules", "audit", "settlement")
MOVEMENT = TypeAdapter(MovementIn)


# -- sign-in and the session ----------------------------------------------------------------------------------
def _session(request: Request) -> ConsoleSession | None:
    services = services_of(request)
    return sessions.read(request.cookies.get(COOKIE), services.settings.api_token)


@root.get("/")
def home(request: Request) -> RedirectResponse:
    """A browser opening the node lands on its console."""
    return RedirectResponse("/console/stock" if _session(request) else "/console/sign-in", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, error: str | None = None) -> Response:
    services = services_of(request)
    return templates.TemplateResponse(
        request, "sign_in.html", {"node": services.settings.node_name, "error": error, "section": None}
    )


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    services = services_of(request)
    form = await request.form()
    role = sessions.role_of(str(form.get("token", "")), services.settings.api_token, services.settings.audit_token)
    if role is None:
        log.warning("console sign-in refused: wrong token")
        page = templates.TemplateResponse(
            request,
            "sign_in.html",
            {"node": services.settings.node_name, "error": "That token opens nothing here.", "section": None},
            status_code=401,
        )
        return page
    response = RedirectResponse("/console/stock", status_code=303)
    response.set_cookie(
        COOKIE,
        sessions.issue(role, services.settings.api_token),
        max_age=sessions.MAX_AGE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # behind a TLS proxy the cookie never travels in clear
        path="/",
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = _session(request)
    form = await request.form()
    if session is None or not session.csrf_ok(_text(form, "csrf")):
        return _forbidden(request, "sign-out needs the form of a page you are signed in on")
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _forbidden(request: Request, why: str) -> Response:
    return templates.TemplateResponse(request, "forbidden.html", {"why": why, "section": None}, status_code=403)


# -- pages ----------------------------------------------------------------------------------------------------
class Names:
    """Member names by address, read once per page from the registry (a chain call, outside any transaction)."""

    def __init__(self, services: NodeServices) -> None:
        self.me = services.address
        self.names: dict[str, str] = {}
        if services.directory is not None:
            try:
                self.names = {m.address: m.name for m in services.directory.members()}
            except Exception as exc:  # the registry unreachable: addresses stand in for names
                log.info("console: member names unavailable: %s", exc)

    def __call__(self, address: str | None) -> str:
        if not address:
            return ""
        if address == self.me:
            return "this node"
        return self.names.get(address, address[:10] + "...")


def _render(request: Request, session: ConsoleSession, section: str, context: dict[str, Any]) -> Response:
    services = services_of(request)
    base = {
        "node": services.settings.node_name,
        "me": services.address,
        "session": session,
        "section": section,
        "sections": SECTIONS,
        "done": request.query_params.get("done"),
        "error": request.query_params.get("error"),
        "who": context.pop("who", None) or Names(services),
        "bars": bars,
        "columns": columns,
    }
    return templates.TemplateResponse(request, f"{section}.html", {**base, **context})


Gather = Callable[[NodeServices, ConsoleSession, dict[str, str]], dict[str, Any]]


def _page(section: str) -> Callable[[Gather], Gather]:
    """A section's GET: signed in (else to the sign-in page), its context gathered in a worker thread."""

    def wrap(gather: Gather) -> Gather:
        async def page(request: Request) -> Response:
            session = _session(request)
            if session is None:
                return RedirectResponse("/console/sign-in", status_code=303)
            services = services_of(request)
            context = await run_in_threadpool(gather, services, session, dict(request.query_params))
            return _render(request, session, section, context)

        page.__name__ = f"{section}_page"
        router.add_api_route(f"/{section}", page, methods=["GET"], response_class=HTMLResponse)
        return gather  # the gathering stays callable: the sandbox renders the rules page with its report

    return wrap


def _attempt(what: str, fn: Callable[[], Any]) -> tuple[Any, str | None]:
    """A read that may fail for reasons the page should say (no active rule book, chain down), not crash."""
    try:
        return fn(), None
    except NodeError as exc:
        return None, f"{what}: {exc.message}"
    except (ChainError, AuditSourceError, OSError) as exc:
        return None, f"{what}: {exc}"


@_page("stock")
def stock_page(services: NodeServices, session: ConsoleSession, query: dict[str, str]) -> dict[str, Any]:
    sku_filter = query.get("sku") or None
    with session_scope(services.engine) as s:
        q = select(StockBalance).where(StockBalance.quantity != 0)
        if sku_filter:
            q = q.where(StockBalance.sku == sku_filter)
        balances = s.exec(q.order_by(col(StockBalance.sku), col(StockBalance.lot), col(StockBalance.location))).all()
        expiry = {(lot.sku, lot.code): lot.expires_on for lot in s.exec(select(Lot)).all()}
        records = s.exec(select(Record).where(Record.kind == LEDGER).order_by(col(Record.seq).desc()).limit(15)).all()
        recent = [json.loads(r.body) for r in records]
        skus = [k.code for k in s.exec(select(Sku).order_by(col(Sku.code))).all()]
        locations = [loc.code for loc in s.exec(select(Location).order_by(col(Location.code))).all()]
    by_sku: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in balances:
        by_sku[b.sku].append({**b.model_dump(), "expires_on": expiry.get((b.sku, b.lot))})
    decisions, problem = (
        _attempt("the rule book's suggestions", lambda: decisions_now(services.rules, services.settings.safety_stock))
        if session.operator
        else (None, None)  # the operator's, as GET /rules/decisions is: an auditor sees the stock and records
    )
    return {
        "by_sku": dict(by_sku),
        "recent": recent,
        "decisions": decisions,
        "decisions_problem": problem,
        "skus": skus,
        "locations": locations,
        "sku_filter": sku_filter,
    }


@_page("transfers")
def transfers_page(services: NodeServices, session: ConsoleSession, query: dict[str, str]) -> dict[str, Any]:
    if services.negotiation is None:
        return {"unavailable": "negotiation needs the member registry (CONSORTIUM_REGISTRY_ADDRESS)"}
    negotiator, steps = services.negotiation.negotiator, services.negotiation.steps
    if not session.operator:
        # The audit token is the consortium's: what this node asks, offers and lends stays its operator's, as
        # the API keeps it behind the operator token.
        return {"unavailable": "Transfers are this node's own business: sign in with its operator token to see them."}
    today = datetime.now(UTC).date()
    with session_scope(services.engine) as s:
        requests = [r.model_dump() for r in negotiation_api.list_requests(s)]
        invitations = [i.model_dump() for i in negotiation_api.invitations(s, steps)]
        transfers = [t.model_dump() for t in negotiation_api.transfers(s)]
        plans = s.exec(
            select(Record)
            .where(Record.kind == LEDGER, Record.type == RecordType.PLAN)
            .order_by(col(Record.seq).desc())
            .limit(5)
        ).all()
        plan_bodies = [_with_breakdown(json.loads(p.body)) for p in plans]
        locations = [loc.code for loc in s.exec(select(Location).order_by(col(Location.code))).all()]
        skus = [k.code for k in s.exec(select(Sku).order_by(col(Sku.code))).all()]
    for r in requests:
        r["unmet_days"] = (today - date.fromisoformat(r["requested_on"])).days + 1 if r["status"] == "open" else None
    peers, peers_problem = _attempt("partners", lambda: negotiator.directory.peers())
    return {
        "requests": requests,
        "invitations": invitations,
        "transfers": transfers,
        "plans": plan_bodies,
        "disputes": [d.model_dump() for d in negotiation_api.disputes(steps)],
        "purchases": steps.joint_purchases.listing(),
        "loans": steps.loans.listing(),
        "quotes": [q.model_dump() for q in steps.quotes.listing()[:20]],
        "peers": [(m.name, round(d / 1000)) for m, d in peers or []],
        "peers_problem": peers_problem,
        "locations": locations,
        "skus": skus,
        "in_two_days": (today + timedelta(days=2)).isoformat(),
    }


def _with_breakdown(record: dict[str, Any]) -> dict[str, Any]:
    """A plan record with its cost by what it pays for (negotiation/matching.py cost_breakdown)."""
    try:
        problem = parse_problem(record["plan"]["problem"])
        allocations = [
            Allocation(a["request"], a["offer"], int(a["quantity"])) for a in record["plan"]["answer"]["allocations"]
        ]
        record["breakdown"] = cost_breakdown(problem, allocations)
        # What else could have been done, priced by the same objective: nothing at all (every unit short),
        # and the cheapest offer first without looking further (the greedy baseline of docs/matching.md).
        record["alternatives"] = {
            "no transfer at all": sum(r.quantity * r.shortage_penalty for r in problem.requests),
            "cheapest offer first": greedy(problem).total_cost,
        }
    except (ProblemError, KeyError, TypeError, ValueError) as exc:
        log.info("plan record %s: no cost breakdown: %s", record.get("seq"), exc)
        record["breakdown"] = None
        record["alternatives"] = None
    return record


@_page("rules")
def rules_page(services: NodeServices, session: ConsoleSession, query: dict[str, str]) -> dict[str, Any]:
    rules = services.rules
    active, active_problem = _attempt("the rule book in force", rules.active)
    history, history_problem = _attempt("the rule books on chain", rules.history)
    book = active.policy.checked.book if active is not None else None
    matrix = book.matrix if book is not None else {}
    return {
        "active": active,
        "active_problem": active_problem,
        "history": history or [],
        "history_problem": history_problem,
        "held": rules.held() if session.operator else [],
        "book": book,
        "matrix": matrix,
        "rows": sorted({row for cells in matrix.values() for row in cells}),
        "sandbox": None,
        # The book in force, to edit: a sandbox run starts from what is, not from an empty page.
        "sandbox_book": rules.body(active.policy.version) if active is not None and session.operator else "",
        "conflicts": [],
        "sandbox_metrics": (
            ("plan_cost", "plan cost"),
            ("unfilled", "units unfilled"),
            ("capital_tied_up", "capital tied up"),
            ("offered_units", "units offered"),
        ),
    }


@_page("audit")
def audit_page(services: NodeServices, session: ConsoleSession, query: dict[str, str]) -> dict[str, Any]:
    with session_scope(services.engine) as s:
        batches = [b.model_dump() for b in audit_api.audit_batches(s)][-20:]
        total = len(s.exec(select(Record.seq).where(Record.kind == LEDGER)).all())
        skus = [k.code for k in s.exec(select(Sku).order_by(col(Sku.code))).all()]
    pending, oldest = waiting_records(services.engine, LEDGER)
    timeline = None
    sku, at = query.get("sku"), query.get("at")
    if sku:
        timeline = _timeline(services, sku, at)
    return {
        "batches": list(reversed(batches)),
        "pending": pending,
        "oldest_pending": oldest,
        "total": total,
        "skus": skus,
        "timeline": timeline,
        "sku": sku,
        "at": at or "",
        "verified": query.get("verified"),
    }


def _timeline(services: NodeServices, sku: str, at: str | None) -> dict[str, Any]:
    """The SKU's balances as the records stood at a moment (the whole history when none is given), and the
    records that changed them: the auditor's replay (node/domain/replay.py) over this node's own ledger."""
    moment = (at or "").strip()
    if moment and len(moment) == 10:
        moment += "T23:59:59.999999Z"
    with session_scope(services.engine) as s:
        rows = s.exec(select(Record).where(Record.kind == LEDGER).order_by(col(Record.seq))).all()
        bodies = [json.loads(r.body) for r in rows]
    upto = [b for b in bodies if not moment or str(b["at"]) <= moment]
    touching = [b for b in upto if any(ln["sku"] == sku for ln in b.get("lines", []))]
    result = replay(touching)
    balances = sorted(
        ({**b.__dict__, "quantity": q} for b, q in result.balances.items() if b.sku == sku),
        key=lambda x: (x["lot"], x["location"], x["status"]),
    )
    return {"balances": balances, "records": touching[-25:][::-1], "violations": result.violations}


@_page("settlement")
def settlement_page(services: NodeServices, session: ConsoleSession, query: dict[str, str]) -> dict[str, Any]:
    if services.negotiation is None:
        return {"unavailable": "settlement needs the member registry (CONSORTIUM_REGISTRY_ADDRESS)"}
    settlements = services.negotiation.steps.settlements
    today = datetime.now(UTC).date()
    start = _date(query.get("from")) or today.replace(day=1)
    end = _date(query.get("to")) or today
    view, problem = (
        _attempt("the contributions", lambda: settlements.live_contributions(start, end))
        if session.operator
        else (
            None,
            "The live contributions are the operator's (as GET /settlement/contributions is); statements follow.",
        )
    )
    who = Names(services)
    rows = settlements.statements()
    details = []
    for row in reversed(rows[-5:]):
        doc, _ = _attempt("a statement", partial(settlements.statement, row.id))
        details.append({"row": row, "doc": doc})
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "contributions": view,
        "contributions_problem": problem,
        "charts": _contribution_charts(view, who) if view else [],
        "over_time": _over_time(view, who) if view else None,
        "statements": details,
        "me": services.address,
        "who": who,
    }


CHARTED = (
    ("shortages_avoided", "shortages avoided (units)"),
    ("capital_freed", "capital freed (minor units)"),
    ("consignment_unit_hours", "stock held for others (unit-hours)"),
    ("reserved_unit_hours", "stock reserved for others (unit-hours)"),
    ("value_supplied", "value supplied (minor units)"),
)


def _over_time(view: dict[str, Any], who: Names) -> dict[str, Any]:
    """Each charted metric per step of the period, one series per member."""
    steps = view.get("series", [])
    members = [m["member"] for m in view.get("members", [])]
    labels = [s["period"]["to"] if s["period"]["from"] == s["period"]["to"] else s["period"]["from"] for s in steps]
    charts = [
        (
            caption,
            [(who(m), [int(s["members"].get(m, {}).get(key, 0)) for s in steps]) for m in members],
        )
        for key, caption in CHARTED
    ]
    return {"labels": labels, "charts": charts}


def _contribution_charts(view: dict[str, Any], who: Names) -> list[tuple[str, list[tuple[str, Any]]]]:
    members = view.get("members", [])
    charts: list[tuple[str, list[tuple[str, Any]]]] = [
        (caption, [(who(m["member"]), int(m["metrics"][key])) for m in members]) for key, caption in CHARTED
    ]
    turnover = [(f"{who(m['member'])}: with", float(m["metrics"]["turnover"])) for m in members] + [
        (f"{who(m['member'])}: without", float(m["metrics"]["turnover_without_transfers"])) for m in members
    ]
    charts.append(("turnover with and without the transfers", turnover))
    return charts


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


# -- forms ----------------------------------------------------------------------------------------------------
def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _int(form: FormData, name: str) -> int:
    text = _text(form, name)
    try:
        return int(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name.replace('_', ' ')} must be a whole number, not {text!r}") from exc


def _action(section: str, path: str, auditor_may: bool = False) -> Callable[[Callable[..., str]], Callable[..., Any]]:
    """A form's POST: signed in as operator (or auditor, where allowed), its CSRF token right; the action runs
    in a worker thread and the browser goes back to the section with what happened."""

    def wrap(act: Callable[..., str]) -> Callable[..., Any]:
        async def post(request: Request) -> Response:
            session = _session(request)
            form = await request.form()
            if session is None:
                return RedirectResponse("/console/sign-in", status_code=303)
            if not session.csrf_ok(_text(form, "csrf")):
                return _forbidden(request, "the form's CSRF token is missing or not this session's: reload the page")
            if not session.operator and not auditor_may:
                return _forbidden(request, "an auditor's view is read-only: sign in with the operator token to act")
            services = services_of(request)
            back = f"/console/{section}"
            try:
                done = await run_in_threadpool(act, services, form, request.path_params)
            except RequestError as exc:
                return RedirectResponse(f"{back}?{urlencode({'error': exc.message})}", status_code=303)
            except (ValidationError, yaml.YAMLError) as exc:
                return RedirectResponse(f"{back}?{urlencode({'error': _said(exc)})}", status_code=303)
            if done.startswith("?"):
                return RedirectResponse(back + done, status_code=303)
            return RedirectResponse(f"{back}?{urlencode({'done': done})}", status_code=303)

        post.__name__ = act.__name__
        router.add_api_route(path, post, methods=["POST"])
        return post

    return wrap


def _said(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _movement(services: NodeServices, body: dict[str, Any]) -> str:
    movement = MOVEMENT.validate_python(body)
    me = services.address
    (record,) = services.ledger.write([ledger_api.with_expiry(movement, me)])
    return f"{body['type']} recorded as record {record.seq}"


def _evidence(form: FormData, *names: str) -> list[dict[str, str]]:
    pairs = [(_text(form, f"{n}_source"), _text(form, f"{n}_reference")) for n in names]
    return [{"source": src, "reference": ref} for src, ref in pairs if src or ref]


@_action("stock", "/stock/receipt")
def post_receipt(services: NodeServices, form: FormData, _params: dict[str, Any]) -> str:
    body = {
        "type": MovementType.RECEIPT,
        "sku": _text(form, "sku"),
        "lot": _text(form, "lot"),
        "location": _text(form, "location"),
        "quantity": _int(form, "quantity"),
        "expires_on": _text(form, "expires_on") or None,
        "evidence": _evidence(form, "evidence"),
        "memo": _text(form, "memo"),
    }
    return _movement(services, body)


@_action("stock", "/stock/adjustment")
def post_adjustment(services: NodeServices, form: FormData, _params: dict[str, Any]) -> str:
    body = {
        "type": MovementType.ADJUSTMENT,
        "sku": _text(form, "sku"),
        "lot": _text(form, "lot"),
        "location": _text(form, "location"),
        "quantity": _int(form, "quantity"),
        "evidence": _evidence(form, "evidence1", "evidence2"),
        "memo": _text(form, "memo"),
    }
    return _movement(services, body)


@_action("transfers", "/transfers/{transfer}/receive")
def post_receive(services: NodeServices, form: FormData, params: dict[str, Any]) -> str:
    got = services.negotiating().steps.transfers.confirm_receipt(
        params["transfer"], _int(form, "quantity"), _text(form, "location")
    )
    return f"received {got['received']} at {_text(form, 'location')}"


@_action("transfers", "/transfers/{subject}/dispute")
def post_dispute(services: NodeServices, form: FormData, params: dict[str, Any]) -> str:
    reason = _text(form, "reason")
    if not reason:
        raise InvalidRequest("a dispute says why")
    claim = _int(form, "claim_amount") if _text(form, "claim_amount") else 0
    opened = services.negotiating().steps.disputes.open_dispute(params["subject"], reason, claim, None)
    return f"dispute opened with {opened['respondent']}"


@_action("transfers", "/invitations")
def post_invitation(services: NodeServices, form: FormData, _params: dict[str, Any]) -> str:
    """Invite the partners within the radius now, as POST /negotiation/invitations does."""
    body = InvitationIn(
        sku=_text(form, "sku"),
        quantity=_int(form, "quantity"),
        needed_by=_text(form, "needed_by"),
        min_shelf_life_days=_int(form, "min_shelf_life_days") if _text(form, "min_shelf_life_days") else 0,
        consignment=_text(form, "consignment") == "yes",
    )
    sent = negotiation_api.invite(body, services.negotiating().steps)
    names = ", ".join(m.name for m in sent.invited) or "nobody (no member within the radius)"
    return f"invited {names} for {body.quantity} {body.sku}"


@_action("transfers", "/requests")
def post_request(services: NodeServices, form: FormData, _params: dict[str, Any]) -> str:
    body = ReplenishmentIn(
        sku=_text(form, "sku"),
        location=_text(form, "location"),
        quantity=_int(form, "quantity"),
        requested_on=_text(form, "requested_on") or None,
    )
    with session_scope(services.engine) as s:
        row = negotiation_api.add_request(body, s)
    return f"request {row.id} for {row.quantity} {row.sku} at {row.location}"


@_action("transfers", "/requests/check")
def post_check(services: NodeServices, _form: FormData, _params: dict[str, Any]) -> str:
    made = services.negotiating().negotiator.check_requests()
    invited = [m for m in made if m["invitation"]]
    return f"{len(made)} SKU(s) due: {len(invited)} invitation(s) sent" if made else "no request is due yet"


@_action("transfers", "/quotes/check")
def post_quotes(services: NodeServices, _form: FormData, _params: dict[str, Any]) -> str:
    sent = services.negotiating().steps.quotes.ask_due(services.settings.safety_stock)
    return f"{len(sent)} quote request(s) sent" if sent else "no rule asks for a quote now (or it asked today)"


@_action("transfers", "/plan")
def post_plan(services: NodeServices, form: FormData, _params: dict[str, Any]) -> str:
    plan = services.negotiating().negotiator.plan(0.0, force=_text(form, "force") == "yes")
    return f"planned: {len(plan['acceptances'])} offer(s) accepted"


@_action("transfers", "/joint-purchases/{purchase}/accept")
def post_accept_share(services: NodeServices, _form: FormData, params: dict[str, Any]) -> str:
    out = services.negotiating().steps.joint_purchases.accept(params["purchase"])
    return f"share {out['share']} accepted (record {out['record_seq']})"


@_action("transfers", "/loans/{loan}/lend")
def post_lend(services: NodeServices, form: FormData, params: dict[str, Any]) -> str:
    loans = services.negotiating().steps.loans
    loans.lend(
        params["loan"], _text(form, "lot"), _text(form, "from_location"), _int(form, "fee_per_unit_day"),
        _int(form, "unit_sale_price"),
    )  # fmt: skip
    return "lent"


@_action("transfers", "/loans/{loan}/return")
def post_give_back(services: NodeServices, form: FormData, params: dict[str, Any]) -> str:
    services.negotiating().steps.loans.give_back(params["loan"], _int(form, "quantity"))
    return f"{_int(form, 'quantity')} given back"


def _book_from(form: FormData) -> dict[str, Any]:
    data = yaml.safe_load(_text(form, "book") or "{}")
    if not isinstance(data, dict):
        raise InvalidRequest("a rule book is a YAML (or JSON) mapping")
    return data


@router.post("/rules/try", response_class=HTMLResponse)
async def post_try(request: Request) -> Response:
    """The sandbox: this node's history replayed under an edited or uploaded rule book beside the one in
    force. The book is held here (as POST /rules/try does), nothing else changes, so the report is shown at
    once (no redirect)."""
    session = _session(request)
    form = await request.form()
    if session is None:
        return RedirectResponse("/console/sign-in", status_code=303)
    if not session.csrf_ok(_text(form, "csrf")):
        return _forbidden(request, "the form's CSRF token is missing or not this session's: reload the page")
    if not session.operator:
        return _forbidden(request, "an auditor's view is read-only: sign in with the operator token to act")
    services = services_of(request)

    def run() -> dict[str, Any]:
        from node.services.sandbox import run_sandbox

        proposed, conflicts = services.rules.add(_book_from(form))
        current = services.rules.active().policy.checked
        end = _date(_text(form, "to")) or datetime.now(UTC).date()
        start = _date(_text(form, "from")) or end - timedelta(days=30)
        report = run_sandbox(
            services.engine, services.address, current, proposed, start, end, services.settings.safety_stock
        )
        return {
            **rules_page(services, session, {}),
            "sandbox": report,
            "sandbox_book": _text(form, "book"),
            "conflicts": [conflict_json(c) for c in conflicts],
        }

    try:
        context = await run_in_threadpool(run)
    except RequestError as exc:
        return RedirectResponse(f"/console/rules?{urlencode({'error': exc.message})}", status_code=303)
    except (ValidationError, yaml.YAMLError) as exc:
        return RedirectResponse(f"/console/rules?{urlencode({'error': _said(exc)})}", status_code=303)
    return _render(request, session, "rules", context)


@_action("rules", "/rules/books")
def post_book(services: NodeServices, form: FormData, _params: dict[str, Any]) -> str:
    checked, conflicts = services.rules.add(_book_from(form))
    said = f" ({len(conflicts)} conflict(s))" if conflicts else ""
    return f"rule book {checked.version} held here{said}: propose it to put it to the approvers"


@_action("rules", "/rules/{version}/propose")
def post_propose(services: NodeServices, _form: FormData, params: dict[str, Any]) -> str:
    services.rules.propose(params["version"])
    return f"proposed {params['version'][:12]}..."


@_action("rules", "/rules/{version}/approve")
def post_approve(services: NodeServices, _form: FormData, params: dict[str, Any]) -> str:
    out = services.rules.approve(params["version"])
    when = out["activates_at_block"]
    then = f"in force from block {when}" if when else "more approvals are needed"
    return f"approved {params['version'][:12]}... at block {out['approved_at_block']}: {then}"


@_action("audit", "/audit/verify", auditor_may=True)
def post_verify(services: NodeServices, _form: FormData, _params: dict[str, Any]) -> str:
    """The auditor's check, run against this node's own proof pages and the chain: it trusts the node no more
    than `consortium audit verify` would."""
    settings = services.settings
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    try:
        report = audit_source(from_node(services.peers, url, LEDGER), services.web3)  # with the audit token
    except (AuditSourceError, ChainError, OSError) as exc:
        raise InvalidRequest(f"verify could not run: {exc}") from exc
    if report.ok:
        said = f"verified against the chain: {report.records_verified} records in {report.batches_verified} batches"
        return "?" + urlencode({"verified": "ok", "done": said})
    return "?" + urlencode({"verified": "failed", "error": "; ".join(str(f) for f in report.findings[:5])})


@_action("settlement", "/settlement/{statement}/approve")
def post_approve_statement(services: NodeServices, _form: FormData, params: dict[str, Any]) -> str:
    """The operator approves the statement awaiting it, as POST /settlement/statements/{id}/approve does."""
    state = services.negotiating().steps.settlements.approve(params["statement"])
    return f"statement {state['id'][:12]}... approved: {state['status']}"


@_action("settlement", "/settlement/{statement}/dispute")
def post_dispute_statement(services: NodeServices, form: FormData, params: dict[str, Any]) -> str:
    """The operator disputes it: the reason, and the flows ticked (each box's value is the flow's key as JSON)."""
    lines = []
    for value in form.getlist("line"):
        try:
            line = FlowKeyIn.model_validate_json(value if isinstance(value, str) else "")
        except ValidationError as exc:
            raise InvalidRequest("a ticked line is no flow of the statement") from exc
        lines.append(cast(FlowKey, line.model_dump(by_alias=True)))
    state = services.negotiating().steps.settlements.dispute(params["statement"], _text(form, "reason"), lines)
    return f"statement {state['id'][:12]}... disputed with {len(lines)} line(s): every member is told"


@_action("settlement", "/settlement/{statement}/withdraw")
def post_withdraw_statement(services: NodeServices, form: FormData, params: dict[str, Any]) -> str:
    state = services.negotiating().steps.settlements.withdraw(params["statement"], _text(form, "reason"))
    return f"statement {state['id'][:12]}... withdrawn: every member is told"


@_action("settlement", "/settlement/close")
def post_close(services: NodeServices, form: FormData, _params: dict[str, Any]) -> str:
    start, end = _date(_text(form, "from")), _date(_text(form, "to"))
    if start is None or end is None:
        raise InvalidRequest("a period has a first and a last day (YYYY-MM-DD)")
    closed = services.negotiating().steps.settlements.close(start, end)
    return f"period closed: statement {closed['id'][:12]}... proposed to every member, awaiting approvals"
