"""`consortium up`: a local consortium of real processes (Anvil, contracts, partner nodes with demo data).

State lives in one data directory (chain state, node databases, manifest), so starting again on the
same directory resumes the same consortium.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

import httpx
import yaml
from eth_account import Account

from chain.anvil import AnvilProcess
from chain.deploy import RuleGenesis, deploy_contracts
from chain.errors import AnvilDidNotStart
from chain.processes import free_port, port_is_free
from chain.registry_client import MemberRegistryClient, Role
from chain.tx import connect
from negotiation.rules.book import CheckedBook, load_book
from node.errors import NodeDidNotStart
from node.launch.nodes import fund_new_key, until
from node.launch.process import NodeProcess
from node.services.rules_keeper import governance_terms


@dataclass(frozen=True)
class DemoPartner:
    name: str
    title: str
    lat_e6: int
    lon_e6: int


# A child that exits is restarted after these delays; one more exit within the window stops the consortium.
RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
RESTART_WINDOW_SECONDS = 120.0
SUPERVISE_EVERY_SECONDS = 0.5

DEMO_RULEBOOK = Path(__file__).resolve().parents[1] / "demo" / "rulebook.yaml"
DEMO_POOL = DEMO_RULEBOOK.parent / "pool.yaml"

# Around Hangzhou: two partners within 50 km of each other, one (Jiaxing) about 75 km out.
DEMO_PARTNERS = [
    DemoPartner("hangzhou-store", "Hangzhou Xihu mother-and-baby store", 30_259_000, 120_130_000),
    DemoPartner("xiaoshan-dealer", "Xiaoshan dealer", 30_185_000, 120_264_000),
    DemoPartner("jiaxing-distributor", "Jiaxing regional distributor", 30_746_000, 120_755_000),
    DemoPartner("shaoxing-dealer", "Shaoxing Keqiao dealer", 30_084_000, 120_493_000),
    DemoPartner("yuhang-store", "Yuhang store", 30_419_000, 120_301_000),
]
DEMO_BLOCK_SECONDS = 2.0
# Headquarters runs a node too (the registry's HQ role, the rule book's approver and arbitrator): in Shanghai,
# well outside any store's invitation radius, since it holds no stock to offer.
HEADQUARTERS = DemoPartner("headquarters", "Brand headquarters", 31_230_000, 121_473_000)


class LocalConsortium:
    def __init__(self, data_dir: Path, node_count: int = 3) -> None:
        self.data_dir = data_dir.resolve()
        self.node_count = min(node_count, len(DEMO_PARTNERS))
        self.manifest_path = self.data_dir / "consortium.json"
        self.keys_path = self.data_dir / "keys.json"
        self.anvil: AnvilProcess | None = None
        self.nodes: list[NodeProcess] = []

    # -- manifest ---------------------------------------------------------------------------------
    def _load(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        if not self.manifest_path.exists():
            return None, {}
        return json.loads(self.manifest_path.read_text()), json.loads(self.keys_path.read_text())

    def _save(self, manifest: dict[str, Any], keys: dict[str, str]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2))
        tmp.chmod(0o600)  # it holds every node's API token
        os.replace(tmp, self.manifest_path)
        self.keys_path.write_text(json.dumps(keys, indent=2))
        self.keys_path.chmod(0o600)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        manifest, keys = self._load()
        port = manifest["anvil_port"] if manifest and port_is_free(manifest["anvil_port"]) else free_port()
        say(f"starting Anvil on port {port} (chain state: {self.data_dir / 'anvil-state.json'})")
        # Blocks keep coming while nothing happens, as on a real chain: a rule book approved on an idle
        # consortium comes into force after its activation delay instead of waiting for the next anchor.
        self.anvil = AnvilProcess(
            port=port, state_path=self.data_dir / "anvil-state.json", block_time=DEMO_BLOCK_SECONDS
        )
        self.anvil.start()
        self._pid_file("anvil", self.anvil.proc)
        rpc = self.anvil.rpc_url
        if manifest is None or not self._contracts_present(rpc, manifest):
            if manifest is not None:
                self._set_aside(manifest)
            say("compiling and deploying the contracts (member registry, anchors, rule registry)")
            manifest, keys = self._create(rpc)
        manifest["rpc_url"] = rpc
        manifest["anvil_port"] = port
        registry_admin = MemberRegistryClient(rpc, manifest["registry"])
        for entry in running_entries(manifest):
            if not port_is_free(entry["port"]):
                entry["port"] = free_port()
            url = f"http://127.0.0.1:{entry['port']}"
            if registry_admin.member(entry["address"]).node_url != url:
                MemberRegistryClient(rpc, manifest["registry"], key_of(keys, entry)).update_node_url(url)
            entry["url"] = url
            node = NodeProcess(
                entry["name"],
                entry["port"],
                self._node_env(manifest, entry, keys),
                self.data_dir / entry["name"] / "node.log",
            )
            say(f"starting node {entry['name']} at {url} (log: {node.log_path})")
            self.nodes.append(node)  # before it runs: a signal right after its launch still stops it
            node.launch()  # side by side: each spends seconds importing before it answers
            self._pid_file(entry["name"], node.proc)
        for node in self.nodes:
            node.wait_ready()
        self._save(manifest, keys)
        if not manifest.get("demo_loaded"):
            for entry in manifest["nodes"]:
                say(f"loading demo stock into {entry['name']}")
                load_demo_data(entry, manifest)
            load_demo_dealings(manifest)
            manifest["demo_loaded"] = True
            self._save(manifest, keys)
        return manifest

    def _pid_file(self, name: str, proc: subprocess.Popen[bytes] | None) -> None:
        """`<data dir>/<name>.pid`: which process is which, for an operator (and a supervisor test)."""
        if proc is not None:
            (self.data_dir / f"{name}.pid").write_text(f"{proc.pid}\n")

    def _children(self) -> list[tuple[str, subprocess.Popen[bytes] | None, Callable[[], None], str]]:
        """(name, process, restart, where it answers) for Anvil and every node."""
        assert self.anvil is not None
        anvil = self.anvil
        children: list[tuple[str, subprocess.Popen[bytes] | None, Callable[[], None], str]] = [
            ("anvil", anvil.proc, anvil.start, anvil.rpc_url)
        ]
        children += [(n.name, n.proc, n.start, n.url) for n in self.nodes]
        return children

    def supervise(self, stop: threading.Event) -> bool:
        """Until `stop` is set: a child that exits is restarted after a back-off, with a line on the terminal;
        one that keeps exiting (more than len(RESTART_DELAYS) times in RESTART_WINDOW_SECONDS) stops the
        consortium. Returns False when it gave up."""
        exits: dict[str, list[float]] = {}
        while not stop.wait(SUPERVISE_EVERY_SECONDS):
            for name, proc, restart, where in self._children():
                if proc is None or proc.poll() is None:
                    continue
                now = time.monotonic()
                recent = [t for t in exits.get(name, []) if now - t < RESTART_WINDOW_SECONDS]
                exits[name] = [*recent, now]
                if len(recent) >= len(RESTART_DELAYS):
                    say(
                        f"{name} keeps exiting (code {proc.returncode}, {len(recent) + 1} times in "
                        f"{RESTART_WINDOW_SECONDS:.0f} s): stopping the consortium; see {self._log_of(name)}"
                    )
                    return False
                delay = RESTART_DELAYS[len(recent)]
                say(
                    f"{name} exited (code {proc.returncode}); restarting in {delay:g} s "
                    f"(attempt {len(recent) + 1} of {len(RESTART_DELAYS)}); log: {self._log_of(name)}"
                )
                if stop.wait(delay):
                    return True
                try:
                    restart()
                except (NodeDidNotStart, AnvilDidNotStart) as exc:
                    say(f"{name} did not come back: {str(exc).splitlines()[0]}")
                    continue
                self._pid_file(name, self._process_of(name))
                say(f"{name} is back at {where}")
        return True

    def _process_of(self, name: str) -> subprocess.Popen[bytes] | None:
        return next(proc for n, proc, _, _ in self._children() if n == name)

    def _log_of(self, name: str) -> Path | str:
        node = next((n for n in self.nodes if n.name == name), None)
        return node.log_path if node else "Anvil's output (restart it by hand to see it)"

    def _set_aside(self, manifest: dict[str, Any]) -> None:
        """State from a consortium whose contracts are gone (or from an older version of this software):
        its node databases are moved aside, never deleted, and a new consortium starts."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for entry in running_entries({"nodes": [], **manifest}):
            old = self.data_dir / entry["name"]
            if old.exists():
                old.rename(self.data_dir / f"{entry['name']}.stale-{stamp}")
                say(f"moved the state of {entry['name']} aside to {old.name}.stale-{stamp}")

    def _contracts_present(self, rpc: str, manifest: dict[str, Any]) -> bool:
        w3 = connect(rpc)
        keys = ("registry", "anchor_contract", "rule_registry")
        return all(manifest.get(k) and len(w3.eth.get_code(manifest[k])) > 0 for k in keys)

    def _create(self, rpc: str) -> tuple[dict[str, Any], dict[str, str]]:
        # Fresh keys for headquarters (registry admin, approver, arbitrator) and every partner, funded on this
        # chain: Anvil's well-known keys are public, and anyone holding one could sign a ruling.
        partners = DEMO_PARTNERS[: self.node_count]
        keys = {"admin": fund_new_key(rpc), **{p.name: fund_new_key(rpc) for p in partners}}
        address = {name: str(Account.from_key(key).address) for name, key in keys.items()}
        book_path = self.data_dir / "rulebook.yaml"
        genesis = write_genesis_book(
            book_path,
            address["admin"],
            [address[p.name] for p in partners[:3]],
            {p.name: address[p.name] for p in partners},
        )
        deployment = deploy_contracts(
            rpc, keys["admin"], RuleGenesis(genesis.version, governance_terms(genesis), book_path.name)
        )
        registry = MemberRegistryClient(rpc, deployment.registry, keys["admin"])
        nodes = [_register_node(registry, p, address[p.name], Role.PARTNER) for p in partners]
        headquarters_node = _register_node(registry, HEADQUARTERS, address["admin"], Role.HEADQUARTERS)
        manifest: dict[str, Any] = {
            "chain_id": deployment.chain_id,
            "rpc_url": rpc,
            "anvil_port": 0,
            "registry": deployment.registry,
            "anchor_contract": deployment.anchors,
            "rule_registry": deployment.rules,
            "rule_book": genesis.version,
            "rulebook_file": str(book_path),
            "headquarters": address["admin"],
            # Auditors' token for every node's /audit/*: proofs are not public on a partner's network.
            "audit_token": secrets.token_urlsafe(24),
            "nodes": nodes,
            "headquarters_node": headquarters_node,
            "demo_loaded": False,
        }
        return manifest, keys

    def _node_env(self, manifest: dict[str, Any], entry: dict[str, Any], keys: dict[str, str]) -> dict[str, str]:
        db = self.data_dir / entry["name"] / "node.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        return {
            "CONSORTIUM_NODE_NAME": entry["name"],
            "CONSORTIUM_DATABASE_URL": f"sqlite:///{db}",
            "CONSORTIUM_API_TOKEN": entry["api_token"],
            "CONSORTIUM_PRIVATE_KEY": key_of(keys, entry),
            "CONSORTIUM_RPC_URL": manifest["rpc_url"],
            "CONSORTIUM_REGISTRY_ADDRESS": manifest["registry"],
            "CONSORTIUM_ANCHOR_ADDRESS": manifest["anchor_contract"],
            "CONSORTIUM_RULES_ADDRESS": manifest["rule_registry"],
            # A consortium made before fresh keys ran the demo book as it is (with Anvil's public addresses).
            "CONSORTIUM_RULEBOOK_FILE": str(manifest.get("rulebook_file", DEMO_RULEBOOK)),
            **({"CONSORTIUM_AUDIT_TOKEN": manifest["audit_token"]} if manifest.get("audit_token") else {}),
        }

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None

    def run_until_interrupted(self) -> None:
        """Start, print the summary, supervise until Ctrl-C, SIGINT or SIGTERM; exits 1 if a child keeps dying.

        Both signals are ours whatever we inherited: a shell script or CI runner that starts us in the background
        hands us SIGINT ignored, and then `kill -INT` to the job reached only the nodes, which the supervisor
        restarted, while this process and Anvil (in its own session) stayed up."""
        with stop_signals_handled_by(_interrupt):
            healthy = True
            made_data_dir = not self.data_dir.exists()
            try:
                manifest = self.start()
                print(summary(manifest, self.manifest_path, in_force(manifest), own_command()), flush=True)
                healthy = self.supervise(threading.Event())  # never set here: a signal ends it instead
            except KeyboardInterrupt:
                pass
            finally:
                # A second signal (the process group's reaches the nodes and us; a person presses Ctrl-C twice)
                # must not abandon the children half-stopped: each one's stop ends in SIGKILL if it hangs.
                for signum in STOP_SIGNALS:
                    signal.signal(signum, signal.SIG_IGN)
                say("stopping nodes and Anvil...")
                self.stop()
                if made_data_dir and self.data_dir.is_dir() and not any(self.data_dir.iterdir()):
                    self.data_dir.rmdir()  # a start that failed first thing (no Anvil) leaves no empty directory
                say(farewell(self.data_dir, self.manifest_path.exists(), own_command()))
        if not healthy:
            raise SystemExit(1)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals_handled_by(handler: signal._HANDLER) -> Iterator[None]:
    """SIGINT and SIGTERM go to `handler` while inside, whatever this process inherited (SIGINT ignored, for a
    background job); the inherited handlers are back afterwards."""
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, inherited in previous.items():
            signal.signal(signum, inherited)


class NodeEntry(TypedDict):
    """A node's entry in the manifest (`nodes`, `headquarters_node`): the member it runs for and where it
    answers."""

    name: str
    title: str
    address: str
    url: str
    port: int
    api_token: str
    lat_e6: int
    lon_e6: int


def _register_node(registry: MemberRegistryClient, member: DemoPartner, address: str, role: Role) -> NodeEntry:
    """Enter `member` in the registry with a node on a free local port; its manifest entry, with a fresh API
    token."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    registry.add_member(address, member.title, role, url, member.lat_e6, member.lon_e6)
    return NodeEntry(
        name=member.name,
        title=member.title,
        address=address,
        url=url,
        port=port,
        api_token=secrets.token_urlsafe(24),
        lat_e6=member.lat_e6,
        lon_e6=member.lon_e6,
    )


def running_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node `consortium up` runs: the partners, then headquarters' (a consortium made before
    headquarters had a node runs without one)."""
    hq = manifest.get("headquarters_node")
    return [*manifest["nodes"], *([hq] if hq else [])]


def key_of(keys: dict[str, str], entry: dict[str, Any]) -> str:
    """A node's key: headquarters' node signs with the registry admin's key (it is the HQ member)."""
    return keys["admin"] if entry["name"] == HEADQUARTERS.name else keys[entry["name"]]


def write_genesis_book(
    path: Path, headquarters: str, partners: list[str], names: dict[str, str] | None = None
) -> CheckedBook:
    """The demo rule book (node/demo/rulebook.yaml) governed by this consortium's own members: headquarters
    approves every version and arbitrates; of it and the first three partners, a majority approves. A rule that
    asks a partner by its demo name (`supplier: jiaxing-distributor`) asks this consortium's member."""
    data = yaml.safe_load(DEMO_RULEBOOK.read_text(encoding="utf-8"))
    for rule in data.get("rules", []):
        supplier = rule.get("action", {}).get("supplier")
        if supplier in (names or {}):
            rule["action"]["supplier"] = (names or {})[supplier]
    approvers = [headquarters, *partners]
    data["governance"].update(
        approvers=approvers, quorum=min(3, len(approvers)), required=[headquarters], arbitrator=headquarters
    )
    path.write_text(
        "# This consortium's genesis rule book: node/demo/rulebook.yaml with its own members in `governance`.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return load_book(path)


def say(line: str) -> None:
    """One line of progress on the operator's terminal, at once (it may be piped)."""
    print(line, flush=True)


class RuleBookInForce(TypedDict):
    """What a node answers on GET /rules/active: the version the chain says is in force, its label, and the
    block it came into force at."""

    version: str
    label: str
    in_force_since_block: int


def in_force(manifest: dict[str, Any]) -> RuleBookInForce | str:
    """The rule book in force as the first node runs it (after a rule change it is no longer the genesis book),
    or why the node did not say."""
    url = manifest["nodes"][0]["url"]
    try:
        answer = httpx.get(f"{url}/rules/active", timeout=30)
    except httpx.HTTPError as exc:
        return f"{url}/rules/active did not answer: {exc}"
    if answer.status_code != 200:
        return f"{url}/rules/active answered {answer.status_code}: {answer.text[:200]}"
    body = answer.json()
    return RuleBookInForce(
        version=body["version"], label=body["label"], in_force_since_block=body["in_force_since_block"]
    )


def own_command() -> str:
    """How to run `consortium` again as this process was run: `consortium` when that name on PATH is this
    program (an activated .venv, an installed package), else the path it was started by (`.venv/bin/consortium`
    from the Makefile), so that a printed command works when pasted into the same shell."""
    started_as = sys.argv[0]
    on_path = shutil.which("consortium")
    if Path(started_as).name != "consortium":  # not the console script (python -m, a test): name it plainly
        return "consortium"
    if on_path is not None and Path(on_path).resolve() == Path(started_as).resolve():
        return "consortium"
    return started_as


def farewell(data_dir: Path, kept: bool, command: str) -> str:
    """The last line `consortium up` prints: what a new start does, as it really happens."""
    if kept:
        return f"stopped; `{command} up --data-dir {data_dir}` resumes this consortium (same chain, nodes and tokens)"
    return f"stopped before a consortium was made; the next `{command} up --data-dir {data_dir}` makes a new one"


def summary(manifest: dict[str, Any], path: Path, book: RuleBookInForce | str, command: str = "consortium") -> str:
    if isinstance(book, str):
        rules = f"(in force: unknown, {book})"
    else:
        genesis_file = Path(manifest.get("rulebook_file", DEMO_RULEBOOK)).name
        genesis = f" (the genesis book, {genesis_file})" if book["version"] == manifest.get("rule_book") else ""
        rules = (
            f"(in force: {book['label']}{genesis} {book['version'][:18]}..., "
            f"since block {book['in_force_since_block']})"
        )
    lines = [
        "Local consortium is up (Ctrl-C stops it).",
        f"  chain      {manifest['rpc_url']}  (chain id {manifest['chain_id']})",
        f"  registry   {manifest['registry']}",
        f"  anchors    {manifest['anchor_contract']}",
        f"  rules      {manifest['rule_registry']}  {rules}",
    ]
    if manifest.get("headquarters"):
        lines.append(f"  HQ         {manifest['headquarters']}  (registry admin, approver, arbitrator: keys.json)")
    if manifest.get("headquarters_node"):
        hq = manifest["headquarters_node"]
        lines.append(f"  HQ node    {hq['name']:<22} {hq['url']}/  token {hq['api_token']}")
    for n in manifest["nodes"]:
        lines.append(f"  node       {n['name']:<22} {n['url']}/  token {n['api_token']}")
    first = manifest["nodes"][0]
    lines += [
        "Each URL opens the node's console (sign in with its token); its API is documented at /docs.",
        f"  manifest   {path}",
        "Try:",
        f"  curl -H 'Authorization: Bearer {first['api_token']}' {first['url']}/stock",
        f"  {command} audit verify --rpc {manifest['rpc_url']} --node {first['url']}"
        + (f" --token {manifest['audit_token']}" if manifest.get("audit_token") else ""),
    ]
    return "\n".join(lines)


def load_demo_data(entry: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Master data and a few weeks of movements (node/demo/pool.yaml), through the node's own API like an
    operator would."""
    demo = yaml.safe_load(DEMO_POOL.read_text(encoding="utf-8"))
    others = {n["name"]: n["address"] for n in manifest["nodes"]}
    lat, lon = entry["lat_e6"], entry["lon_e6"]
    locations = [
        ("WH", "warehouse", "warehouse", lat, lon),
        ("SHOP", "shop floor", "store", lat + 2000, lon + 2000),
    ]
    h = {"Authorization": f"Bearer {entry['api_token']}"}
    with httpx.Client(base_url=entry["url"], headers=h, timeout=30) as http:
        for sku in demo["skus"]:
            http.post("/skus", json=sku).raise_for_status()
        for code, what, kind, la, lo in locations:
            body = {"code": code, "name": f"{entry['title']} {what}", "kind": kind, "lat": f"{la / 1e6:.6f}"}
            http.post("/locations", json={**body, "lon": f"{lo / 1e6:.6f}"}).raise_for_status()
        for movement in demo["movements"]:
            http.post("/ledger/movements", json=movement).raise_for_status()
        owner = others.get(demo["consignment"]["owner"])
        if owner and owner != entry["address"]:
            consigned = {**demo["consignment"]["movement"], "owner": owner}
            http.post("/ledger/movements", json=consigned).raise_for_status()
        http.post("/anchoring/flush")


def _operator(entry: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=entry["url"], headers={"Authorization": f"Bearer {entry['api_token']}"}, timeout=30)


def _arrives(check: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    """Wait for a message to reach a peer (its outbox delivers it): the demo's next step acts on it."""
    try:
        until(check, timeout)
    except AssertionError as exc:
        raise NodeDidNotStart(f"demo: {what} did not arrive within {timeout:.0f} s") from exc


def _proposed(http: httpx.Client, purchase: str) -> bool:
    return any(p["id"] == purchase for p in http.get("/joint-purchases").json())


def load_demo_dealings(manifest: dict[str, Any]) -> None:
    """The joint purchase and the loan of node/demo/pool.yaml, between the members that run (each needs all
    its parties), through the nodes' APIs as their operators would."""
    demo = yaml.safe_load(DEMO_POOL.read_text(encoding="utf-8"))
    nodes = {n["name"]: n for n in manifest["nodes"]}
    joint = demo["joint_purchase"]
    if joint["buyer"] in nodes and all(m in nodes for m in joint["units"]):
        say(f"demo joint purchase: {joint['buyer']} buys {joint['body']['sku']} for {len(joint['units'])} members")
        units = [{"member": nodes[m]["address"], "units": u} for m, u in joint["units"].items()]
        with _operator(nodes[joint["buyer"]]) as http:
            made = http.post("/joint-purchases", json={**joint["body"], "participants": units})
            made.raise_for_status()
        purchase = made.json()["id"]
        for name in joint["units"]:
            if name == joint["buyer"]:
                continue
            with _operator(nodes[name]) as http:
                _arrives(partial(_proposed, http, purchase), "a share")
                http.post(f"/joint-purchases/{purchase}/accept").raise_for_status()
    loan = demo["loan"]
    if loan["borrower"] in nodes and loan["lender"] in nodes:
        borrower, lender = nodes[loan["borrower"]], nodes[loan["lender"]]
        say(f"demo loan: {loan['borrower']} borrows {loan['ask']['sku']} from {loan['lender']}")
        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + loan["days"] * 86_400))
        with _operator(borrower) as http:
            asked = http.post("/loans", json={**loan["ask"], "lender": lender["address"], "return_by": due})
            asked.raise_for_status()
        loan_id = asked.json()["id"]
        with _operator(lender) as http:
            _arrives(lambda: http.get(f"/loans/{loan_id}").status_code == 200, "the loan request")
            http.post(f"/loans/{loan_id}/lend", json=loan["lend"]).raise_for_status()
        with _operator(borrower) as http:
            _arrives(lambda: http.get(f"/loans/{loan_id}").json()["status"] == "lent", "the loan")
            http.post(f"/loans/{loan_id}/return", json={"quantity": loan["give_back"]}).raise_for_status()
        with _operator(lender) as http:
            _arrives(lambda: http.get(f"/loans/{loan_id}").json()["returned"] == loan["give_back"], "the return")
    for entry in manifest["nodes"]:
        with _operator(entry) as http:
            http.post("/anchoring/flush")
