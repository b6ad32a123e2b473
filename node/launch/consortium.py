"""`consortium up`: a local consortium of real processes (Anvil, contracts, partner nodes with demo data).

State lives in one data directory (chain state, node databases, manifest), so starting again on the
same directory resumes the same consortium.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from eth_account import Account

from chain.anvil import DEFAULT_PRIVATE_KEYS, AnvilProcess
from chain.deploy import RuleGenesis, deploy_contracts
from chain.processes import free_port, port_is_free
from chain.registry_client import MemberRegistryClient, Role
from chain.tx import connect
from negotiation.rules.book import load_book
from node.launch.process import NodeProcess
from node.services.rules_keeper import governance_terms


@dataclass(frozen=True)
class DemoPartner:
    name: str
    title: str
    lat_e6: int
    lon_e6: int


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
        os.replace(tmp, self.manifest_path)
        self.keys_path.write_text(json.dumps(keys, indent=2))
        self.keys_path.chmod(0o600)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        manifest, keys = self._load()
        port = manifest["anvil_port"] if manifest and port_is_free(manifest["anvil_port"]) else free_port()
        self.anvil = AnvilProcess(port=port, state_path=self.data_dir / "anvil-state.json")
        self.anvil.start()
        rpc = self.anvil.rpc_url
        if manifest is None or not self._contracts_present(rpc, manifest):
            if manifest is not None:
                self._set_aside(manifest)
            manifest, keys = self._create(rpc)
        manifest["rpc_url"] = rpc
        manifest["anvil_port"] = port
        registry_admin = MemberRegistryClient(rpc, manifest["registry"])
        for entry in manifest["nodes"]:
            if not port_is_free(entry["port"]):
                entry["port"] = free_port()
            url = f"http://127.0.0.1:{entry['port']}"
            if registry_admin.member(entry["address"]).node_url != url:
                MemberRegistryClient(rpc, manifest["registry"], keys[entry["name"]]).update_node_url(url)
            entry["url"] = url
            node = NodeProcess(
                entry["name"],
                entry["port"],
                self._node_env(manifest, entry, keys),
                self.data_dir / entry["name"] / "node.log",
            )
            node.start()
            self.nodes.append(node)
        self._save(manifest, keys)
        if not manifest.get("demo_loaded"):
            for entry in manifest["nodes"]:
                load_demo_data(entry, manifest)
            manifest["demo_loaded"] = True
            self._save(manifest, keys)
        return manifest

    def _set_aside(self, manifest: dict[str, Any]) -> None:
        """State from a consortium whose contracts are gone (or from an older version of this software):
        its node databases are moved aside, never deleted, and a new consortium starts."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for entry in manifest.get("nodes", []):
            old = self.data_dir / entry["name"]
            if old.exists():
                old.rename(self.data_dir / f"{entry['name']}.stale-{stamp}")
                print(f"moved the state of {entry['name']} aside to {old.name}.stale-{stamp}", flush=True)

    def _contracts_present(self, rpc: str, manifest: dict[str, Any]) -> bool:
        w3 = connect(rpc)
        keys = ("registry", "anchor_contract", "rule_registry")
        return all(manifest.get(k) and len(w3.eth.get_code(manifest[k])) > 0 for k in keys)

    def _create(self, rpc: str) -> tuple[dict[str, Any], dict[str, str]]:
        admin_key = DEFAULT_PRIVATE_KEYS[0]  # headquarters: administers the registry, approves rule books
        demo = load_book(DEMO_RULEBOOK)
        deployment = deploy_contracts(
            rpc, admin_key, RuleGenesis(demo.version, governance_terms(demo), DEMO_RULEBOOK.name)
        )
        registry = MemberRegistryClient(rpc, deployment.registry, admin_key)
        keys = {"admin": admin_key}
        nodes = []
        for i, partner in enumerate(DEMO_PARTNERS[: self.node_count]):
            key = DEFAULT_PRIVATE_KEYS[i + 1]
            address = Account.from_key(key).address
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            registry.add_member(address, partner.title, Role.PARTNER, url, partner.lat_e6, partner.lon_e6)
            keys[partner.name] = key
            nodes.append(
                {
                    "name": partner.name,
                    "title": partner.title,
                    "address": address,
                    "url": url,
                    "port": port,
                    "api_token": secrets.token_urlsafe(24),
                    "lat_e6": partner.lat_e6,
                    "lon_e6": partner.lon_e6,
                }
            )
        manifest = {
            "chain_id": deployment.chain_id,
            "rpc_url": rpc,
            "anvil_port": 0,
            "registry": deployment.registry,
            "anchor_contract": deployment.anchors,
            "rule_registry": deployment.rules,
            "rule_book": demo.version,
            "nodes": nodes,
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
            "CONSORTIUM_PRIVATE_KEY": keys[entry["name"]],
            "CONSORTIUM_RPC_URL": manifest["rpc_url"],
            "CONSORTIUM_REGISTRY_ADDRESS": manifest["registry"],
            "CONSORTIUM_ANCHOR_ADDRESS": manifest["anchor_contract"],
            "CONSORTIUM_RULES_ADDRESS": manifest["rule_registry"],
            "CONSORTIUM_RULEBOOK_FILE": str(DEMO_RULEBOOK),
        }

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None

    def run_until_interrupted(self) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            manifest = self.start()
            print(summary(manifest, self.manifest_path), flush=True)
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            print("stopping nodes and Anvil...", flush=True)
            self.stop()
            print(f"stopped; `consortium up --data-dir {self.data_dir}` resumes the same state", flush=True)


def summary(manifest: dict[str, Any], path: Path) -> str:
    lines = [
        "Local consortium is up (Ctrl-C stops it).",
        f"  chain      {manifest['rpc_url']}  (chain id {manifest['chain_id']})",
        f"  registry   {manifest['registry']}",
        f"  anchors    {manifest['anchor_contract']}",
        f"  rules      {manifest['rule_registry']}  (in force: {manifest['rule_book'][:18]}..., {DEMO_RULEBOOK.name})",
    ]
    for n in manifest["nodes"]:
        lines.append(f"  node       {n['name']:<22} {n['url']}/docs  token {n['api_token']}")
    first = manifest["nodes"][0]
    lines += [
        f"  manifest   {path}",
        "Try:",
        f"  curl -H 'Authorization: Bearer {first['api_token']}' {first['url']}/stock",
        f"  consortium audit verify --rpc {manifest['rpc_url']} --node {first['url']}",
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
