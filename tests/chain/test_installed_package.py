"""The package installed as the Dockerfile installs it (`pip install .`, not editable) runs `consortium up` from
another directory: the contracts' sources and compiled build travel as package data, Anvil is found on PATH, and
nothing is compiled. An auditor with that installed package alone, no Node.js on PATH, verifies the records and
the day's settlement statement.

Fast and offline: a fresh virtualenv gets only this project (no dependencies, no build isolation); the
dependencies and the build backend come from the development venv through a .pth file. A plain path line in a .pth
is not itself a site directory, so the development venv's editable finder for this project is never loaded: the
project imports from the new venv's copy, which the test checks.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.up import kill_leftovers

REPO = Path(__file__).resolve().parents[2]
# What docker/Dockerfile copies into the image before `pip install .`: a build must need nothing else.
SOURCES = ("pyproject.toml", "README.md", "node", "chain", "negotiation", "settlement", "contracts")


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, pip configuration or CONSORTIUM_* settings leaking in from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "CONSORTIUM_", "PYTHON", "VIRTUAL_ENV")) and k != "DATABASE_URL"
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1", **extra)
    return env


def run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def install_non_editable(tmp_path: Path) -> Path:
    """A clean copy of the sources pip-installed into a fresh venv; returns the venv's bin/."""
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert all(f"COPY {name}" in dockerfile or f" {name} " in dockerfile for name in SOURCES), "Dockerfile drifted"
    src = tmp_path / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    venv = tmp_path / "venv"
    env = clean_env()
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip())
    dev_sites = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "dev-dependencies.pth").write_text("".join(f"{p}\n" for p in dev_sites))
    # --ignore-installed: the development venv's editable install is visible through the .pth; never touch it.
    run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--ignore-installed",
            src,
        ],
        tmp_path,
        env,
        timeout=300,
    )
    where = json.loads(
        run(
            [
                python,
                "-c",
                "import json, chain, contracts, node; "
                "print(json.dumps([m.__file__ for m in (chain, contracts, node)]))",
            ],
            tmp_path,
            env,
        )
    )
    assert all(Path(f).resolve().is_relative_to(site.resolve()) for f in where), where
    return venv / "bin"


def read_lines(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def wait_for_banner(proc: subprocess.Popen[str], lines: queue.Queue[str | None], timeout: float = 240) -> str:
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        out.append(line)
        if line.startswith("Try:"):
            return "".join(out)
    raise AssertionError(f"consortium up did not come up (exit {proc.poll()}):\n{''.join(out)}")


def wait_for_a_batch(node_url: str, audit_token: str, timeout: float = 60) -> None:
    """Until the node has anchored a batch, so the auditor has records on chain to verify."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batches = httpx.get(
            f"{node_url}/audit/batches", headers={"Authorization": f"Bearer {audit_token}"}, timeout=10
        ).json()
        if batches:
            return
        time.sleep(0.2)
    raise AssertionError(f"{node_url} anchored no batch in {timeout} s")


def audit_without_node(bin_dir: Path, cwd: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """`consortium audit verify` as an auditor runs it: the installed package, and nothing but it on PATH."""
    env = clean_env(PATH=str(bin_dir), CONSORTIUM_AUDIT_TOKEN=manifest["audit_token"], HOME=str(cwd))
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("solcjs", path=env["PATH"]) is None
    node_url = manifest["nodes"][0]["url"]
    wait_for_a_batch(node_url, manifest["audit_token"])
    out = run([bin_dir / "consortium", "audit", "verify", "--rpc", manifest["rpc_url"], "--node", node_url], cwd, env)
    report: dict[str, Any] = json.loads(out)
    return report


def final_statement_of_today(manifest: dict[str, Any], timeout: float = 180) -> str:
    """The store closes today on its node and every member's operator approves it, as README's "Settling the day"
    does: the id, once every member approved."""
    for node in manifest["nodes"]:  # anchor what waits, so the statement counts every record
        auth = {"Authorization": f"Bearer {node['api_token']}"}
        httpx.post(f"{node['url']}/anchoring/flush", headers=auth, timeout=60).raise_for_status()
    store = manifest["nodes"][0]
    auth = {"Authorization": f"Bearer {store['api_token']}"}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    period = {"from": today, "to": today}
    closed = httpx.post(f"{store['url']}/settlement/periods", json=period, headers=auth, timeout=120)
    assert closed.status_code in (200, 201), closed.text
    statement = str(closed.json()["id"])
    deadline = time.monotonic() + timeout
    members = [*manifest["nodes"], *([manifest["headquarters_node"]] if manifest.get("headquarters_node") else [])]
    for node in members:  # each member's operator approves once its node has the proposal (404 until then) and
        auth_of = {"Authorization": f"Bearer {node['api_token']}"}  # has recomputed it (409 until then)
        while (
            r := httpx.post(f"{node['url']}/settlement/statements/{statement}/approve", headers=auth_of, timeout=60)
        ).status_code in (404, 409) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert r.status_code == 200, r.text
    while time.monotonic() < deadline:
        got = httpx.get(f"{store['url']}/settlement/statements/{statement}", headers=auth, timeout=30).json()
        if got["status"] == "final":
            return statement
        time.sleep(0.2)
    raise AssertionError(f"statement {statement} not final in {timeout} s: {got.get('status')}")


def settle_verify_without_node(bin_dir: Path, cwd: Path, manifest: dict[str, Any], statement: str) -> dict[str, Any]:
    """`consortium settle verify` as an auditor runs it: the installed package, and nothing but it on PATH."""
    env = clean_env(PATH=str(bin_dir), HOME=str(cwd))
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("solcjs", path=env["PATH"]) is None
    command = [bin_dir / "consortium", "settle", "verify", "--rpc", manifest["rpc_url"]]
    command += ["--node", manifest["nodes"][0]["url"], "--id", statement, "--token", manifest["audit_token"]]
    report: dict[str, Any] = json.loads(run(command, cwd, env))
    return report


def test_installed_package_runs_consortium_up_from_another_directory(tmp_path: Path) -> None:
    bin_dir = install_non_editable(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "cache"
    # As a user who ran `npm ci` somewhere and put its tools on PATH; no node_modules near the working directory.
    env = clean_env(
        PATH=os.pathsep.join([str(bin_dir), str(REPO / "node_modules" / ".bin"), os.environ.get("PATH", "")]),
        XDG_CACHE_HOME=str(cache),
    )
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [str(bin_dir / "consortium"), "up", "--data-dir", str(state)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=read_lines, args=(proc, lines), daemon=True).start()
    try:
        wait_for_banner(proc, lines)
        manifest = json.loads((state / "consortium.json").read_text())
        first = manifest["nodes"][0]
        health = httpx.get(f"{first['url']}/health", timeout=10)
        assert health.status_code == 200 and health.json()["node"] == first["name"], health.text
        # Deployed from the shipped build: nothing compiled, so nothing cached.
        assert not (cache / "consortium" / "contracts.json").exists()
        report = audit_without_node(bin_dir, elsewhere, manifest)
        assert report["ok"] and report["records_verified"] > 0 and not report["findings"], report
        # The statement of today, recomputed and its signatures checked with the same installed package alone.
        statement = final_statement_of_today(manifest)
        settled = settle_verify_without_node(bin_dir, elsewhere, manifest, statement)
        assert settled["ok"] and settled["statement"] == statement and not settled["problems"], settled
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode != 0:
            kill_leftovers(state)
    rest: list[str] = []
    while (line := lines.get(timeout=10)) is not None:
        rest.append(line)
    assert proc.returncode == 0, "".join(rest)
