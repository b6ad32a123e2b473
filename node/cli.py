"""`consortium`: serve a node, start a local consortium, audit a node against the chain."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from chain.records import RecordKind

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

    from chain.peers import PeerClient
    from negotiation.rules.book import CheckedBook
    from node.services.sandbox import SandboxRun
    from settlement.document import Statement

app = typer.Typer(help="Consortium inventory node: pools, ledgers anchored on-chain, audits.", no_args_is_help=True)
node_app = typer.Typer(help="Run this partner's node.", no_args_is_help=True)
audit_app = typer.Typer(
    help="Verify a node's records against the chain, without trusting the node.", no_args_is_help=True
)
rules_app = typer.Typer(
    help="Rule books: check one, see the versions on-chain, propose and approve through a node.", no_args_is_help=True
)
app.add_typer(node_app, name="node")
app.add_typer(audit_app, name="audit")
members_app = typer.Typer(
    help="The member registry on chain: list members; add and remove them with the administrator's key.",
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")
app.add_typer(members_app, name="members")
settle_app = typer.Typer(
    help="Settlement (docs/settlement.md): close a period through a node, show statements, verify one.",
    no_args_is_help=True,
)
app.add_typer(settle_app, name="settle")


class CliError(typer.TyperException):
    """A command that cannot do what it was asked: `main` prints `error: <message>` and exits 2."""

    exit_code = 2


NodeOpt = Annotated[str | None, typer.Option("--node", help="URL of the node to audit")]
ExportOpt = Annotated[Path | None, typer.Option("--export", help="an export file from `consortium audit export`")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="CONSORTIUM_AUDIT_TOKEN", help="audit bearer token")]
OperatorTokenOpt = Annotated[str, typer.Option("--token", envvar="CONSORTIUM_API_TOKEN", help="its operator token")]
KindOpt = Annotated[RecordKind, typer.Option("--kind", help="record kind")]


@node_app.command("serve")
def node_serve() -> None:
    """Serve one node, configured by CONSORTIUM_* environment variables (see node/settings.py). Logs to
    stderr, one line per event (CONSORTIUM_LOG_LEVEL, default INFO)."""
    import logging

    import uvicorn

    from node.api.app import create_app
    from node.api.logs import configure_logging
    from node.settings import SECRETS_REQUIRED, NodeSettings

    settings = NodeSettings()
    missing = [f"CONSORTIUM_{name.upper()}" for name in SECRETS_REQUIRED if name not in settings.model_fields_set]
    if missing:
        raise typer.BadParameter(f"a node serves only with its own key and token: set {' and '.join(missing)}")
    configure_logging(settings.log_level)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "log_level": "warning",
        "access_log": False,
        # A flood of peers or clients gets 503s beyond this many requests at once, not a node out of memory.
        "limit_concurrency": settings.max_concurrent_requests,
    }
    if settings.workers > 1:  # each worker process builds its own app from the same environment
        uvicorn.run("node.api.app:create_app_from_environment", factory=True, workers=settings.workers, **options)
        return
    try:
        served = create_app(settings)
    except Exception:
        logging.getLogger("node").exception("node %s did not start", settings.node_name)
        raise typer.Exit(1) from None
    # Our handler formats uvicorn's lines too (log_config=None); requests are logged by the app, with their id.
    uvicorn.run(served, **options)


@app.command("up")
def up(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="state of the local consortium")] = Path(".consortium"),
    nodes: Annotated[int, typer.Option(help="partner nodes on first start", min=1, max=9)] = 3,
) -> None:
    """Start Anvil, the contracts and the partner nodes with demo data; Ctrl-C stops everything."""
    from node.launch.consortium import LocalConsortium

    LocalConsortium(data_dir, node_count=nodes).run_until_interrupted()


def _http() -> httpx.Client:
    import httpx

    return httpx.Client()


def _peers(token: str | None = None) -> PeerClient:
    """The command's client to nodes (chain/peers.py), with its bearer token. An operator waits longer than a
    node does for a peer: a ruling's delivery, a rule book or a statement fetched by hand."""
    from chain.peers import PeerClient, Timeouts

    return PeerClient(_http(), token, Timeouts(message=30.0, rule_book=10.0, statement=120.0))


def _load_source(node: str | None, export: Path | None, kind: str, token: str | None) -> Any:
    from chain.auditor import from_node, read_export

    if node is not None and export is None:
        with _peers(token) as peers:
            return from_node(peers, node, kind)
    if export is not None and node is None:
        return read_export(export)
    raise typer.BadParameter("give exactly one of --node and --export")


@audit_app.command("verify")
def audit_verify(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain")],
    node: NodeOpt = None,
    export: ExportOpt = None,
    contract: Annotated[str | None, typer.Option("--contract", help="anchor contract the auditor trusts")] = None,
    check_paths: Annotated[
        bool, typer.Option("--check-paths/--no-check-paths", help="fold every proof path to its root (default)")
    ] = True,
    kind: KindOpt = RecordKind.LEDGER,
    token: TokenOpt = None,
) -> None:
    """Check every record against the chain, and a live node's balances against its records; exit 1 and name
    each record or balance that fails."""
    from chain.audit import Finding
    from chain.auditor import audit_export as audit_export_file
    from chain.auditor import audit_source
    from chain.errors import AuditSourceError
    from node.domain.replay import projection_differences

    try:
        if export is not None and node is None:  # streamed over the cores, never loaded whole
            report = audit_export_file(export, rpc, contract)
        else:
            source = _load_source(node, export, kind, token)
            report = audit_source(source, rpc, contract, check_paths=check_paths)
        if node is not None and kind == RecordKind.LEDGER:  # what /stock shows must be what the records add up to
            records = sorted(
                [r for b in source.audit.batches for r in b.records] + list(source.audit.pending),
                key=lambda r: int(r["seq"]),
            )
            with _peers(token) as peers:
                served = peers.audit_balances(node)
            report.findings += [Finding(d) for d in projection_differences(records, served)]
    except AuditSourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for finding in report.findings:
        typer.echo(f"FAIL {finding}", err=True)
    typer.echo(json.dumps(report.as_dict(), indent=2))
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("export")
def audit_export(
    node: Annotated[str, typer.Option("--node", help="URL of the node")],
    out: Annotated[Path, typer.Option("--out", help="file to write (JSON Lines)")],
    kind: KindOpt = RecordKind.LEDGER,
    token: TokenOpt = None,
) -> None:
    """Save a node's records and batch claims to a file, to verify later or elsewhere."""
    from chain.auditor import from_node, write_export
    from chain.errors import AuditSourceError

    try:  # e.g. the node serves a proof format this version does not know (docs/proof-format.md section 5)
        with _peers(token) as peers:
            source = from_node(peers, node, kind)
    except AuditSourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    count = write_export(source, out)
    typer.echo(f"exported {count} records to {out}")


@audit_app.command("replay")
def audit_replay(
    until: Annotated[str, typer.Option("--until", help="ISO-8601 time; balances as of that moment")],
    rpc: Annotated[str | None, typer.Option("--rpc", help="verify against this chain first")] = None,
    node: NodeOpt = None,
    export: ExportOpt = None,
    contract: Annotated[str | None, typer.Option("--contract")] = None,
    sku: Annotated[str | None, typer.Option("--sku", help="trace only this SKU")] = None,
    location: Annotated[str | None, typer.Option("--location", help="trace only this location")] = None,
    include_pending: Annotated[bool, typer.Option("--include-pending", help="also replay unanchored records")] = False,
    token: TokenOpt = None,
) -> None:
    """Rebuild a node's balances from its anchored records as of --until, with the records that made them."""
    from chain.auditor import audit_source
    from chain.errors import AuditSourceError
    from node.domain.replay import replay_source

    try:
        source = _load_source(node, export, RecordKind.LEDGER, token)
        if rpc is not None:
            report = audit_source(source, rpc, contract)
            if not report.ok:
                for finding in report.findings:
                    typer.echo(f"FAIL {finding}", err=True)
                typer.echo("refusing to replay records that fail verification", err=True)
                raise typer.Exit(1)
        result = replay_source(source.audit, until, sku, location, include_pending)
    except (AuditSourceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


@audit_app.command("reconcile")
def audit_reconcile(
    nodes: Annotated[list[str], typer.Option("--node", help="URL of a node; give exactly two")],
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="verify both nodes' records against this chain first (recommended)")
    ] = None,
    token: TokenOpt = None,
) -> None:
    """Match two partners' anchored records of every transfer between them; exit 1 listing each difference."""
    from chain.auditor import audit_source, from_node
    from chain.errors import AuditSourceError
    from settlement.reconcile import reconcile, reconcile_dealings

    if len(nodes) != 2:
        raise typer.BadParameter("give --node twice")
    try:
        with _peers(token) as peers:
            sources = [from_node(peers, url, RecordKind.LEDGER) for url in nodes]
        if rpc is None:
            typer.echo("warning: records not verified against the chain (pass --rpc to verify them)", err=True)
        for url, source in zip(nodes, sources, strict=True):
            if rpc is None:
                continue
            report = audit_source(source, rpc)
            if not report.ok:
                for finding in report.findings:
                    typer.echo(f"FAIL {url} {finding}", err=True)
                raise typer.Exit(1)
    except AuditSourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    (a, b) = sources
    # Only anchored records count: a pending one is the node's word, not yet a fact anyone can check.
    books = (
        a.audit.member,
        [r for batch in a.audit.batches for r in batch.records],
        b.audit.member,
        [r for batch in b.audit.batches for r in batch.records],
    )
    transfers, differences = reconcile(*books)
    dealings, dealing_differences = reconcile_dealings(*books)
    differences += dealing_differences
    for d in differences:
        typer.echo(f"DIFF {d.what} {d.transfer}: {d.field} {d.left!r} != {d.right!r}", err=True)
    typer.echo(
        json.dumps(
            {
                "nodes": [a.audit.member, b.audit.member],
                "transfers": transfers,
                "loans_and_joint_purchases": dealings,
                "pending_records": [len(a.audit.pending), len(b.audit.pending)],
                "differences": [
                    {"what": d.what, "transfer": d.transfer, "field": d.field, "left": d.left, "right": d.right}
                    for d in differences
                ],
            },
            indent=2,
        )
    )
    raise typer.Exit(1 if differences else 0)


@app.command("match")
def match(
    problem: Annotated[Path, typer.Option("--problem", help="problem JSON file (docs/matching.md); - for stdin")],
    time_limit: Annotated[float, typer.Option(help="wall-clock limit of the whole call, seconds")] = 10.0,
    gap: Annotated[float, typer.Option(min=0, max=1, help="stop at this proven relative gap (0: optimum)")] = 0.0,
    use_greedy: Annotated[bool, typer.Option("--greedy", help="cheapest-first baseline instead")] = False,
) -> None:
    """Solve a transfer-matching problem and print the plan as JSON (exit 2 on a malformed problem)."""
    from negotiation.matching import ProblemError, SolverParameters, greedy, parse_problem, plan_hashes, plan_to_json
    from negotiation.matching import solve as solve_plan

    try:
        text = sys.stdin.read() if str(problem) == "-" else problem.read_text()
        parsed = parse_problem(json.loads(text))
    except (OSError, ValueError) as exc:  # JSONDecodeError and ProblemError are ValueErrors
        kind = "malformed problem" if isinstance(exc, ProblemError) else "cannot read problem"
        typer.echo(f"error: {kind}: {exc}", err=True)
        raise typer.Exit(2) from exc
    params = SolverParameters(relative_gap=gap, time_limit=time_limit)
    plan = greedy(parsed) if use_greedy else solve_plan(parsed, params)
    typer.echo(json.dumps({**plan_to_json(plan), "hashes": plan_hashes(parsed, params, plan)}, indent=2))


@app.command("deploy")
def deploy(
    rpc: Annotated[str, typer.Option("--rpc")],
    key: Annotated[str, typer.Option("--key", envvar="CONSORTIUM_ADMIN_KEY", help="administrator's private key")],
    rulebook: Annotated[
        Path | None,
        typer.Option("--rulebook", help="the first rule book: also deploys the RuleRegistry with it in force"),
    ] = None,
) -> None:
    """Deploy the member and anchor registries (and the rule registry); prints their addresses as JSON."""
    from chain.deploy import RuleGenesis, deploy_contracts
    from negotiation.rules.book import RuleBookInvalid, load_book
    from negotiation.rules.conflicts import find_conflicts
    from node.services.rules_keeper import governance_terms

    genesis = None
    if rulebook is not None:
        try:
            book = load_book(rulebook)
        except RuleBookInvalid as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if find_conflicts(book):
            typer.echo("error: the rule book has conflicts (consortium rules check)", err=True)
            raise typer.Exit(2)
        genesis = RuleGenesis(book.version, governance_terms(book), rulebook.name)
    d = deploy_contracts(rpc, key, genesis)
    out = {"chain_id": d.chain_id, "registry": d.registry, "anchor_contract": d.anchors}
    if d.rules:
        out |= {"rule_registry": d.rules, "rule_book": genesis.version if genesis else None}
    typer.echo(json.dumps(out))


RpcOpt = Annotated[str, typer.Option("--rpc", help="the chain's JSON-RPC URL")]
RegistryOpt = Annotated[str, typer.Option("--registry", help="the MemberRegistry address")]
AdminKeyOpt = Annotated[
    str, typer.Option("--key", envvar="CONSORTIUM_ADMIN_KEY", help="the registry administrator's private key")
]


@members_app.command("list")
def members_list(rpc: RpcOpt, registry: RegistryOpt) -> None:
    """Every member the registry has known, as JSON lines: address, name, role, node URL, place, active."""
    from chain.registry_client import MemberRegistryClient

    for m in _chain_call(lambda: MemberRegistryClient(rpc, registry).members()):
        row = {"address": m.address, "name": m.name, "role": m.role.name.lower(), "node_url": m.node_url}
        typer.echo(json.dumps({**row, "lat_e6": m.lat_e6, "lon_e6": m.lon_e6, "active": m.active}))


@members_app.command("add")
def members_add(
    rpc: RpcOpt,
    registry: RegistryOpt,
    key: AdminKeyOpt,
    address: Annotated[str, typer.Option("--address", help="the member's address (its node's key)")],
    name: Annotated[str, typer.Option("--name")],
    node_url: Annotated[str, typer.Option("--url", help="where its node serves, as other nodes reach it")],
    lat_e6: Annotated[int, typer.Option("--lat-e6", help="latitude in microdegrees")],
    lon_e6: Annotated[int, typer.Option("--lon-e6", help="longitude in microdegrees")],
    headquarters: Annotated[bool, typer.Option("--headquarters", help="role HQ instead of partner")] = False,
) -> None:
    """Register a member (the administrator's transaction)."""
    from chain.registry_client import MemberRegistryClient, Role

    role = Role.HEADQUARTERS if headquarters else Role.PARTNER
    client = MemberRegistryClient(rpc, registry, key)
    _chain_call(lambda: client.add_member(address, name, role, node_url, lat_e6, lon_e6))
    typer.echo(json.dumps({"added": address, "role": role.name.lower()}))


@members_app.command("remove")
def members_remove(
    rpc: RpcOpt,
    registry: RegistryOpt,
    key: AdminKeyOpt,
    address: Annotated[str, typer.Option("--address")],
) -> None:
    """Deactivate a member: its messages are refused and it can anchor no more (its anchors stay)."""
    from chain.registry_client import MemberRegistryClient

    client = MemberRegistryClient(rpc, registry, key)
    _chain_call(lambda: client.remove_member(address))
    typer.echo(json.dumps({"removed": address}))


@settle_app.command("close")
def settle_close(
    node: Annotated[str, typer.Option("--node", help="URL of the node that proposes")],
    token: OperatorTokenOpt,
    start: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD")],
) -> None:
    """Close a period: the node builds the statement and sends it to every member; each member's operator then
    approves it (`settle approve`), the proposer's too."""
    answer = _node_call("POST", node, "/settlement/periods", token, {"from": start, "to": end})
    typer.echo(json.dumps(answer))


@settle_app.command("approve")
def settle_approve(
    node: Annotated[str, typer.Option("--node", help="URL of this member's node")],
    token: OperatorTokenOpt,
    statement: Annotated[str, typer.Option("--id", help="the statement awaiting this member's approval")],
) -> None:
    """Approve a statement for this member: its node signs the hash and sends the approval to every member."""
    typer.echo(json.dumps(_node_call("POST", node, f"/settlement/statements/{statement}/approve", token)))


@settle_app.command("dispute")
def settle_dispute(
    node: Annotated[str, typer.Option("--node", help="URL of this member's node")],
    token: OperatorTokenOpt,
    statement: Annotated[str, typer.Option("--id", help="the statement awaiting this member's approval")],
    reason: Annotated[str, typer.Option("--reason", help="why, in at most 256 characters")],
    lines: Annotated[
        list[str] | None,
        typer.Option("--line", help='a flow contested, as JSON: {"kind", "reference", "from", "to"} (repeatable)'),
    ] = None,
) -> None:
    """Dispute a statement for this member: every member is told why and which flows, and it cannot go final."""
    try:
        body = {"reason": reason, "lines": [json.loads(line) for line in lines or []]}
    except ValueError as exc:
        raise CliError(f"a --line is a flow's key as JSON: {exc}") from None
    typer.echo(json.dumps(_node_call("POST", node, f"/settlement/statements/{statement}/dispute", token, body)))


@settle_app.command("withdraw")
def settle_withdraw(
    node: Annotated[str, typer.Option("--node", help="URL of the node that proposed it")],
    token: OperatorTokenOpt,
    statement: Annotated[str, typer.Option("--id", help="the statement it proposed")],
    reason: Annotated[str, typer.Option("--reason", help="why (optional)")] = "",
) -> None:
    """Withdraw a statement this node proposed and has not approved: withdrawn on every member's node."""
    body = {"reason": reason}
    typer.echo(json.dumps(_node_call("POST", node, f"/settlement/statements/{statement}/withdraw", token, body)))


@settle_app.command("show")
def settle_show(
    node: Annotated[str, typer.Option("--node", help="URL of a member's node")],
    statement: Annotated[str | None, typer.Option("--id", help="a statement id; without: the list")] = None,
    token: TokenOpt = None,
) -> None:
    """A statement as that node holds it (status, approvals, disputes), or the list of its statements."""
    path = f"/settlement/statements/{statement}" if statement else "/settlement/statements"
    typer.echo(json.dumps(_node_call("GET", node, path, token), indent=2))


@settle_app.command("report")
def settle_report(
    node: Annotated[str, typer.Option("--node", help="URL of a member's node")],
    statement: Annotated[str, typer.Option("--id", help="the statement id")],
    token: OperatorTokenOpt,
) -> None:
    """A statement as a controller reads it: money as money, members by name, flows and payments."""
    from settlement.report import statement_report

    document = _node_call("GET", node, f"/settlement/statements/{statement}", token)
    names = {p["address"]: p["name"] for p in _node_call("GET", node, "/negotiation/peers", token)}
    identity = _node_call("GET", node, "/audit/identity", token)
    names[str(identity.get("address", ""))] = str(identity.get("node") or "this node")
    currency = _node_call("GET", node, f"/rules/books/{document['rule_version']}", token).get("currency", {})
    typer.echo(statement_report(document, names, currency.get("code", "CNY"), int(currency.get("minor_units", 2))))


@settle_app.command("verify")
def settle_verify(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain")],
    statement_file: Annotated[Path | None, typer.Option("--statement", help="a statement document (JSON)")] = None,
    node: Annotated[str | None, typer.Option("--node", help="fetch the statement from this node")] = None,
    statement: Annotated[str | None, typer.Option("--id", help="the statement id, with --node")] = None,
    every: Annotated[bool, typer.Option("--all", help="with --node: every statement final on it")] = False,
    contract: Annotated[str | None, typer.Option("--contract", help="the anchor contract the auditor trusts")] = None,
    rulebook: Annotated[Path | None, typer.Option("--rulebook", help="the rule book file the statement names")] = None,
    consortium_name: Annotated[str, typer.Option("--consortium-name")] = "consortium-inventory",
    token: TokenOpt = None,
) -> None:
    """Recompute a statement from every member's anchored records (verified against the chain) and the rule
    book it names, and check every member's signature of its hash; with --all, every statement final on the
    node, and that no reference is settled by two of them. Exit 1 naming each difference."""
    from settlement.realised import settled_twice

    if every and (node is None or statement is not None or statement_file is not None):
        raise CliError("--all takes --node URL, and no --id or --statement")
    if not every and ((statement_file is None) == (node is None) or (node is not None and statement is None)):
        raise CliError("give --statement FILE, or --node URL with --id ID or --all")
    with _peers(token) as peers:
        if every:
            assert node is not None
            ids = [r["id"] for r in _node_call("GET", node, "/settlement/statements", token) if r["status"] == "final"]
            documents = [peers.statement_document(node, i) for i in ids]
            address = contract or _contract_given(peers.audit_identity(node).get("anchor_contract"))
        else:
            document, address = _statement_of(peers, statement_file, node, statement, contract)
            documents = [document]
        verifier = _Verifier(peers, rpc, address, consortium_name, node)
        problems = [
            f"{doc.get('id')}: {p}" if every else p for doc in documents for p in verifier.problems(doc, rulebook)
        ]
        problems += settled_twice(cast("list[Statement]", documents)) if every else []
    for problem in problems:
        typer.echo(f"FAIL {problem}", err=True)
    report: dict[str, Any] = {"ok": not problems, "problems": problems}
    if every:
        report = {"statements": [d.get("id") for d in documents], **report}
    else:
        report = {"statement": documents[0].get("id"), "statement_hash": documents[0].get("statement_hash"), **report}
    typer.echo(json.dumps(report, indent=2))
    raise typer.Exit(1 if problems else 0)


class _Verifier:
    """The chain, the registry's members and the consortium's domain, read once, for every statement checked."""

    def __init__(self, peers: PeerClient, rpc: str, address: str, name: str, node: str | None) -> None:
        from chain.anchor_client import AnchorReader
        from chain.registry_client import MemberRegistryClient
        from chain.tx import connect
        from negotiation.messages import Domain

        self.peers, self.address, self.node = peers, address, node
        self.web3 = connect(rpc)
        registry = AnchorReader(self.web3, address).registry_address()
        self.members = _chain_call(lambda: MemberRegistryClient(self.web3, registry).members())
        self.urls = [m.node_url for m in self.members if m.active]
        self.domain = Domain(name, int(self.web3.eth.chain_id), registry)

    def problems(self, document: Any, rulebook: Path | None) -> list[str]:
        """What is wrong with one statement document, recomputed (node/services/settlements.py)."""
        from node.errors import NodeError
        from node.services.settlements import verify_statement

        book = _statement_book(self.peers, document["rule_version"], rulebook, self.urls)
        earlier = _earlier_statements(self.peers, document, [self.node] if self.node else self.urls)
        lookup = _book_lookup(self.peers, self.urls)
        try:
            return verify_statement(
                document, self.members, self.web3, self.address, book, self.domain, self.peers, earlier, lookup
            )
        except NodeError as exc:
            raise CliError(exc.message) from None


def _earlier_statements(peers: PeerClient, document: Any, urls: list[str]) -> dict[str, Any]:
    """The final statements a format-2 statement builds on or corrects, as the first of `urls` that serves
    each one gives it (those none serves are left out: the verification names them)."""
    from chain.peers import PeerError

    wanted = [*document.get("after", []), *([document["corrects"]] if document.get("corrects") else [])]
    found: dict[str, Any] = {}
    for statement_id in wanted:
        for url in urls:
            try:
                found[statement_id] = peers.statement_document(url, statement_id)
                break
            except PeerError:
                continue
    return found


def _book_lookup(peers: PeerClient, urls: list[str]) -> Callable[[str], Any]:
    """A rule book by version, from a member's node (None when none holds it)."""

    def lookup(version: str) -> Any:
        try:
            return _statement_book(peers, version, None, urls)
        except CliError:
            return None

    return lookup


def _statement_of(
    peers: PeerClient, path: Path | None, node: str | None, statement: str | None, contract: str | None
) -> tuple[Any, str]:
    """The statement document (the file, or the one the node serves) and the anchor contract to trust (the one
    given, else the one the node names)."""
    from chain.peers import PeerError

    try:
        if node is None:
            assert path is not None
            return _read_json(path), _contract_given(contract)
        document = peers.statement_document(node, str(statement))
        return document, contract or _contract_given(peers.audit_identity(node).get("anchor_contract"))
    except PeerError as exc:
        raise CliError(str(exc)) from None


def _contract_given(address: str | None) -> str:
    if not address:
        raise CliError("no anchor contract: pass --contract")
    return address


def _statement_book(peers: PeerClient, version: str, path: Path | None, node_urls: list[str]) -> Any:
    """The rule book named by a statement: the file given, or a copy from a member's node; its hash checked."""
    from chain.peers import PeerError
    from negotiation.rules.book import RuleBookInvalid, check_book, load_book, parse_book

    try:
        if path is not None:
            checked = load_book(path)
            if checked.version != version:
                raise CliError(f"{path} is version {checked.version}, the statement names {version}")
            return checked.book
        for url in node_urls:
            try:
                checked = check_book(parse_book(peers.rule_book(url, version)))
            except PeerError:
                continue
            if checked.version == version:
                return checked.book
    except RuleBookInvalid as exc:
        raise CliError(f"the rule book {version} does not validate: {exc}") from None
    raise CliError(f"no member's node holds the rule book {version}: pass --rulebook")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: {exc}") from None


def _chain_call(call: Any) -> Any:
    """The call's result; a refused or failed chain call is a one-line error (exit 2)."""
    from chain.errors import ChainError

    try:
        return call()
    except (ChainError, ValueError) as exc:
        raise CliError(str(exc)) from None


@rules_app.command("check")
def rules_check(file: Annotated[Path, typer.Argument(help="rule book, YAML or JSON")]) -> None:
    """Validate a rule book and search it for conflicts. Exit 0: valid, no conflict; 1: conflicts (each with
    a situation that triggers it); 2: invalid (each problem with the path of its cell)."""
    from negotiation.rules.book import RuleBookInvalid, load_book
    from negotiation.rules.conflicts import find_conflicts
    from node.services.rules_keeper import conflict_json

    try:
        checked = load_book(file)
    except (RuleBookInvalid, OSError) as exc:
        problems = exc.problems if isinstance(exc, RuleBookInvalid) else []
        for p in problems:
            typer.echo(f"INVALID {p}", err=True)
        if not problems:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    conflicts = find_conflicts(checked)
    for c in conflicts:
        typer.echo(f"CONFLICT {c}", err=True)
    out = {
        "version": checked.version,
        "label": checked.book.label,
        "conflicts": [conflict_json(c) for c in conflicts],
    }
    typer.echo(json.dumps(out, indent=2))
    raise typer.Exit(1 if conflicts else 0)


@rules_app.command("schema")
def rules_schema() -> None:
    """Print the rule book's JSON Schema (docs/rulebook.schema.json is this output)."""
    from negotiation.rules.book import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@rules_app.command("history")
def rules_history(
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="JSON-RPC URL of the chain (default: the --data-dir's)")
    ] = None,
    contract: Annotated[
        str | None, typer.Option("--contract", help="the RuleRegistry address (default: the --data-dir's)")
    ] = None,
    books: Annotated[
        list[Path] | None, typer.Option("--book", help="rule book files to match against the versions")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="keep printing new proposals, approvals, activations")
    ] = False,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="a `consortium up` directory, for what --rpc and --contract omit")
    ] = Path(".consortium"),
) -> None:
    """Every version on-chain with its proposer, approvers, activation block and, for the rule book files
    given, whether they hash to it and state the governance the chain holds. Reads the chain only."""
    from node.services.rules_history import follow_events, history_from_chain

    if rpc is None or contract is None:
        manifest = _local_manifest(data_dir, "give --rpc URL --contract ADDR")
        rpc = rpc or str(manifest.get("rpc_url") or "")
        contract = contract or str(manifest.get("rule_registry") or "")
        if not rpc or not contract:
            raise CliError(f"{data_dir / 'consortium.json'} names no rpc_url or rule_registry: give --rpc, --contract")
    for line in history_from_chain(rpc, contract, books or []):
        typer.echo(json.dumps(line))
    if follow:
        follow_events(rpc, contract, lambda event: typer.echo(json.dumps(event)))


def _local_manifest(data_dir: Path, otherwise: str) -> dict[str, Any]:
    """The manifest `consortium up` keeps in `data_dir` (its chain and contracts), or what to give instead."""
    path = data_dir / "consortium.json"
    try:
        manifest = json.loads(path.read_text())
    except OSError:
        raise CliError(f"{path} cannot be read: {otherwise}, or the --data-dir of `consortium up`") from None
    except ValueError as exc:
        raise CliError(f"{path} is not a `consortium up` manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise CliError(f"{path} is not a `consortium up` manifest: not an object")
    return manifest


OperatorToken = Annotated[str | None, typer.Option("--token", envvar="CONSORTIUM_API_TOKEN", help="operator token")]


def _node_call(method: str, node: str, path: str, token: str | None, body: Any = None) -> Any:
    """A node's answer to an operator's call; what kept it from one ends the command as one line."""
    from chain.peers import PeerError

    try:
        with _peers(token) as peers:
            return peers.call(method, node, path, body)
    except PeerError as exc:
        raise CliError(str(exc)) from None


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day YYYY-MM-DD", param_hint=option) from None


@rules_app.command("try")
def rules_try(
    file: Annotated[Path, typer.Argument(help="the proposed rule book, YAML or JSON")],
    start: Annotated[str, typer.Option("--from", help="first day replayed, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last day replayed, YYYY-MM-DD")],
    against: Annotated[
        str | None,
        typer.Option("--against", help="rule book file or held version to compare with (default: in use)"),
    ] = None,
    node: Annotated[str | None, typer.Option("--node", help="URL of the node whose history is replayed")] = None,
    token: OperatorToken = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="a `consortium up` directory (instead of --node)")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="the node's name in --data-dir")] = None,
) -> None:
    """Replay a node's recorded history under the proposed rule book and the one in use, side by side: the
    offers, plans, safety levels and compensation that would change, and the totals. Changes nothing.

    Either through the running node (--node URL --token T: it computes for itself; by default against the
    active book) or on a `consortium up` node's own database, read-only (--data-dir DIR --name NODE; by
    default against the version of its latest decision)."""
    from negotiation.rules.book import RuleBookInvalid, book_json, load_book

    first, last = _day(start, "--from"), _day(end, "--to")
    if (node is None) == (data_dir is None):
        raise CliError(
            "say which node's history to replay: --node URL --token T (a running node) or "
            "--data-dir DIR --name NODE (a `consortium up` directory)" + ("" if node is None else ", not both")
        )
    try:
        proposed = load_book(file)
        against_file = Path(against) if against is not None and Path(against).exists() else None
        current = load_book(against_file) if against_file is not None else None
    except RuleBookInvalid as exc:
        for p in exc.problems:
            typer.echo(f"INVALID {p}", err=True)
        raise CliError("the rule book is not valid") from None
    if node is not None:
        body: dict[str, Any] = {"book": book_json(proposed.book), "from": str(first), "to": str(last)}
        if current is not None:  # --against FILE: the node keeps it first, then compares with its version
            body["against"] = _node_call("POST", node, "/rules/books", token, book_json(current.book))["version"]
        elif against is not None:
            body["against"] = against
        report = _node_call("POST", node, "/rules/try", token, body)
    else:
        assert data_dir is not None
        report = _try_on_data_dir(data_dir, name, proposed, current, against, first, last)
    typer.echo(json.dumps(report, indent=2))


def _try_on_data_dir(
    data_dir: Path,
    name: str | None,
    proposed: CheckedBook,
    current: CheckedBook | None,
    against: str | None,
    first: date,
    last: date,
) -> SandboxRun:
    from eth_account import Account

    from node.services.rules_keeper import RuleKeeper
    from node.services.sandbox import last_decided_version, run_sandbox

    manifest_path, keys_path = data_dir / "consortium.json", data_dir / "keys.json"
    if not manifest_path.is_file() or not keys_path.is_file():
        raise CliError(f"{data_dir} holds no consortium.json and keys.json: give the --data-dir of `consortium up`")
    try:
        manifest, keys = json.loads(manifest_path.read_text()), json.loads(keys_path.read_text())
        names = [str(n["name"]) for n in manifest["nodes"]]
        if not isinstance(keys, dict):
            raise TypeError(f"{keys_path} is not an object of keys")
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"{manifest_path} is not a `consortium up` manifest: {exc}") from None
    if name is None or name not in names:
        which = "give --name" if name is None else f"no node {name!r} in {manifest_path}"
        raise CliError(f"{which}: one of {', '.join(names) or '(none)'}")
    entry = next(n for n in manifest["nodes"] if n["name"] == name)
    key = keys.get(name)
    if not key:
        raise CliError(f"{keys_path} holds no key of {name}")
    me = Account.from_key(key).address
    if entry.get("address") and str(entry["address"]).lower() != me.lower():
        raise CliError(f"the key of {name} in {keys_path} is not the one of its member {entry['address']}")
    db = data_dir / name / "node.db"
    if not db.is_file():
        raise CliError(f"{name} has no database at {db} (has it run yet?)")
    engine = _read_only_sqlite(db)
    try:
        if current is None:
            keeper = RuleKeeper(engine, manifest.get("rpc_url", ""), None, None, key, lambda: "")
            keeper.peers.close()  # only the books it holds are read
            version = against or last_decided_version(engine)
            current = keeper.book(version) if version else None
            if current is None:
                raise CliError(f"{name} holds no rule book {version or '(no decision yet)'}; give --against FILE")
        # `consortium up` runs its nodes without CONSORTIUM_SAFETY_STOCK: their floor is 0.
        return run_sandbox(engine, me, current, proposed, first, last, 0)
    finally:
        engine.dispose()


def _read_only_sqlite(path: Path) -> Engine:
    """An engine on an existing SQLite file that can neither create it (mode=rw) nor write to it (query_only);
    each session reads one consistent snapshot (a deferred transaction), so a running node is never held up.
    Not mode=ro: a read-only connection would leave the WAL's -wal and -shm files behind."""
    import sqlite3

    from sqlalchemy import create_engine, event

    uri = f"{path.resolve().as_uri()}?mode=rw"
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA query_only=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


@rules_app.command("propose")
def rules_propose(
    file: Annotated[Path, typer.Argument(help="rule book, YAML or JSON")],
    node: Annotated[str, typer.Option("--node", help="URL of the proposing member's node")],
    token: OperatorToken = None,
) -> None:
    """Hand a rule book to our node and propose it on-chain (refused if it has conflicts)."""
    from negotiation.rules.book import book_json, load_book

    # Parsed and written back as JSON: YAML's dates are no JSON; an invalid book ends here with its problems.
    added = _node_call("POST", node, "/rules/books", token, book_json(load_book(file).book))
    typer.echo(json.dumps(_node_call("POST", node, f"/rules/books/{added['version']}/propose", token), indent=2))


@rules_app.command("approve")
def rules_approve(
    version: Annotated[str, typer.Argument(help="0x... version to approve")],
    node: Annotated[str, typer.Option("--node", help="URL of the approving member's node")],
    token: OperatorToken = None,
) -> None:
    """Approve a proposed version through our node (which fetches it, checks hash, conflicts, governance)."""
    typer.echo(json.dumps(_node_call("POST", node, f"/rules/books/{version}/approve", token), indent=2))


@app.command("arbitrate")
def rule_dispute(
    dispute: Annotated[str, typer.Option("--dispute", help="the dispute id (0x...)")],
    decision: Annotated[str, typer.Option("--decision", help="the ruling, in words")],
    rule_version: Annotated[str, typer.Option("--rule-version", help="the rule book the dispute was opened under")],
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain")],
    registry: Annotated[str, typer.Option("--registry", help="the MemberRegistry address (EIP-712 domain)")],
    nodes: Annotated[list[str], typer.Option("--node", help="URL of each party's node, to deliver the ruling")],
    key: Annotated[str, typer.Option("--key", envvar="CONSORTIUM_ARBITRATOR_KEY", help="the arbitrator's key")],
    award: Annotated[int, typer.Option("--award", min=0, help="minor units paid by --payer to --payee")] = 0,
    payer: Annotated[str | None, typer.Option("--payer")] = None,
    payee: Annotated[str | None, typer.Option("--payee")] = None,
    consortium: Annotated[str, typer.Option("--consortium", help="the EIP-712 domain name")] = "consortium-inventory",
) -> None:
    """Arbitration: sign a ruling on a dispute with the rule book's arbitrator key and deliver it to both
    parties' nodes, which record it as an anchored, signed record."""
    from chain.peers import MessageAnswer, PeerAnsweredError
    from chain.tx import connect
    from negotiation.messages import Domain
    from node.services.disputes import sign_ruling

    domain = Domain(consortium, int(connect(rpc).eth.chain_id), registry)
    signed = sign_ruling(domain, key, dispute.lower(), decision, rule_version, award, payer, payee)
    failed = False
    with _peers() as peers:
        for url in nodes:
            try:
                answer = peers.post_message(url, json.dumps(signed.as_json()))
            except PeerAnsweredError as exc:
                answer = MessageAnswer(exc.status, exc.error, exc.body)
            typer.echo(f"{url}: {answer.status} {answer.body}", err=True)
            failed |= answer.status >= 300
    typer.echo(json.dumps(signed.as_json(), indent=2))
    raise typer.Exit(1 if failed else 0)


def _known_errors() -> tuple[type[BaseException], ...]:
    """What a command may meet in normal use (bad input, a node or chain that does not answer, a file that is
    not there): each ends as one line. Anything else is a bug and keeps its traceback."""
    import httpx
    import yaml
    from sqlalchemy.exc import SQLAlchemyError
    from web3.exceptions import Web3Exception

    from chain.errors import ChainError
    from negotiation.errors import NegotiationError
    from node.errors import NodeError

    return (
        NodeError,
        NegotiationError,
        ChainError,
        httpx.HTTPError,
        OSError,  # also requests' errors under web3, FileNotFoundError, ConnectionError
        ValueError,  # bad input met deep down: a malformed key, address, number or JSON
        yaml.YAMLError,
        SQLAlchemyError,
        Web3Exception,
    )


def _describe(exc: BaseException) -> str:
    import httpx

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, httpx.RequestError):
        try:
            return f"cannot reach {exc.request.url}: {text}"
        except RuntimeError:  # no request attached
            return text
    if isinstance(exc, OSError) and type(exc).__module__ == "builtins" and type(exc).__name__ not in text:
        return f"{type(exc).__name__}: {text}"
    return text


def run(args: list[str] | None = None) -> int:
    """Run one `consortium` command; its exit code. Every error ends as one line on stderr, `error: ...`,
    and exit code 2 (a usage error too); a command's own findings keep their exit codes (e.g. 1: audit failed)."""
    try:
        rv = app(args=args, prog_name="consortium", standalone_mode=False)
    except typer.TyperException as exc:  # a usage error, a bad parameter, a CliError
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 2  # the help is already printed
        ctx = getattr(exc, "ctx", None)  # usage errors know their command
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
        return 2
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except Exception as exc:
        if not isinstance(exc, _known_errors()):
            raise
        typer.echo(f"error: {_describe(exc)}", err=True)
        return 2
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
