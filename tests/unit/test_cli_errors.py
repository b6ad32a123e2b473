"""`consortium` errors end as one line on stderr (`error: ...`) and exit code 2, never a traceback; and
`consortium rules try` reads the node it is pointed at (--node, or --data-dir and --name) or refuses: it
never falls back to default settings and never creates a database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

import node.store.tables  # noqa: F401  (the tables, for create_all)
from chain.anvil import DEFAULT_PRIVATE_KEYS
from node import cli
from node.cli import run
from node.store.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "testdata" / "rulebook.yaml"
OTHER_BOOK = ROOT / "node" / "demo" / "rulebook.yaml"
KEY = DEFAULT_PRIVATE_KEYS[2]
WINDOW = ["--from", "2026-01-01", "--to", "2026-01-03"]


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def consortium(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def up_dir(tmp_path: Path, name: str = "hangzhou-store", key: str = KEY, with_db: bool = True) -> Path:
    """A `consortium up` data directory as the launcher leaves it: manifest, keys, one node's database."""
    data = tmp_path / "consortium"
    data.mkdir()
    manifest = {
        "rpc_url": "http://127.0.0.1:1",
        "rule_registry": None,
        "nodes": [{"name": name, "address": Account.from_key(key).address, "api_token": "t"}],
    }
    (data / "consortium.json").write_text(json.dumps(manifest))
    (data / "keys.json").write_text(json.dumps({"admin": DEFAULT_PRIVATE_KEYS[0], name: key}))
    if with_db:
        make_engine(f"sqlite:///{data / name / 'node.db'}").dispose()
    return data


def test_rules_try_without_a_node_refuses_in_one_line_and_creates_no_database(tmp_path: Path) -> None:
    book = tmp_path / "proposed.yaml"
    book.write_text(BOOK.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSORTIUM_") and k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "node", "rules", "try", book.name, *WINDOW],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "--node" in line and "--data-dir" in line
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proposed.yaml"]  # no node.db, nothing else


def test_rules_try_on_a_directory_without_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = consortium(
        capsys, "rules", "try", str(BOOK), *WINDOW, "--data-dir", str(tmp_path), "--name", "hangzhou-store"
    )
    assert code == 2 and out == ""
    assert "consortium.json" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_rules_try_on_a_node_that_has_no_database_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = up_dir(tmp_path, with_db=False)
    code, _, err = consortium(
        capsys, "rules", "try", str(BOOK), *WINDOW, "--data-dir", str(data), "--name", "hangzhou-store"
    )
    assert code == 2 and "no database" in one_error_line(err)
    assert not (data / "hangzhou-store").exists()


def test_rules_try_names_the_nodes_when_the_name_is_missing_or_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = up_dir(tmp_path)
    for extra in ([], ["--name", "nobody"]):
        code, _, err = consortium(capsys, "rules", "try", str(BOOK), *WINDOW, "--data-dir", str(data), *extra)
        assert code == 2 and "hangzhou-store" in one_error_line(err)


def test_rules_try_refuses_a_key_that_is_not_the_members(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = up_dir(tmp_path)
    (data / "keys.json").write_text(json.dumps({"hangzhou-store": DEFAULT_PRIVATE_KEYS[3]}))
    code, _, err = consortium(
        capsys, "rules", "try", str(BOOK), *WINDOW, "--data-dir", str(data), "--name", "hangzhou-store"
    )
    assert code == 2 and "key" in one_error_line(err)


def test_rules_try_reads_the_nodes_database_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = up_dir(tmp_path)
    db = data / "hangzhou-store" / "node.db"
    before = db.read_bytes()
    args = ["rules", "try", str(BOOK), *WINDOW, "--data-dir", str(data), "--name", "hangzhou-store"]
    # No decision recorded yet: nothing to compare with unless --against is given.
    code, _, err = consortium(capsys, *args)
    assert code == 2 and "--against" in one_error_line(err)
    code, out, err = consortium(capsys, *args, "--against", str(OTHER_BOOK))
    assert code == 0, err
    report = json.loads(out)
    assert (report["from"], report["to"], report["days"]) == ("2026-01-01", "2026-01-03", 3)
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["node.db"]


def test_rules_try_through_a_node(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sent: list[dict[str, Any]] = []

    def node(request: httpx.Request) -> httpx.Response:
        sent.append({"method": request.method, "url": str(request.url), "json": json.loads(request.content)})
        if request.headers.get("Authorization") != "Bearer op-token":
            body = {"error": "unauthorized", "message": "wrong bearer token", "detail": {}}
            return httpx.Response(401, json=body, headers={"X-Request-ID": "r-1"})
        return httpx.Response(200, json={"current": "0xc", "proposed": "0xp", "totals": {}})

    monkeypatch.setattr(cli, "_http", lambda: httpx.Client(transport=httpx.MockTransport(node)))
    code, out, err = consortium(
        capsys, "rules", "try", str(BOOK), *WINDOW, "--node", "http://n:1/", "--token", "op-token"
    )
    assert code == 0, err
    assert json.loads(out)["current"] == "0xc"
    [call] = sent
    assert (call["method"], call["url"]) == ("POST", "http://n:1/rules/try")
    assert set(call["json"]) == {"book", "from", "to"} and call["json"]["from"] == "2026-01-01"
    assert isinstance(call["json"]["book"], dict)
    json.dumps(call["json"])  # a YAML book goes as JSON (its dates too)

    code, out, err = consortium(capsys, "rules", "try", str(BOOK), *WINDOW, "--node", "http://n:1", "--token", "bad")
    line = one_error_line(err)
    assert code == 2 and out == "" and "401 unauthorized" in line and "r-1" in line and "bad" not in line


def test_rules_try_takes_one_node_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = consortium(
        capsys, "rules", "try", str(BOOK), *WINDOW, "--node", "http://n:1", "--data-dir", str(tmp_path), "--name", "x"
    )
    assert code == 2 and "not both" in one_error_line(err)


@pytest.mark.parametrize(
    "args",
    [
        ["rules", "try", str(BOOK), "--from", "2026-01-01"],  # a missing option
        ["rules", "try", str(BOOK), "--from", "2026-01-01", "--to", "2026-13-01", "--node", "http://n:1"],
        ["rules", "try", "no-such-book.yaml", *WINDOW, "--node", "http://n:1"],
        ["audit", "verify", "--rpc", "http://127.0.0.1:1"],  # neither --node nor --export
        ["audit", "verify", "--rpc", "http://127.0.0.1:1", "--node", "http://127.0.0.1:1"],  # nothing answers
    ],
)
def test_errors_end_as_one_line_and_exit_code_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = consortium(capsys, *args)
    assert code == 2 and out == ""
    one_error_line(err)


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({}, "CONSORTIUM_API_TOKEN and CONSORTIUM_PRIVATE_KEY"),
        ({"CONSORTIUM_API_TOKEN": "an-operator-token-of-ours"}, "CONSORTIUM_PRIVATE_KEY"),
        ({"CONSORTIUM_PRIVATE_KEY": "0x" + "11" * 32}, "CONSORTIUM_API_TOKEN"),
    ],
)
def test_node_serve_refuses_to_start_without_its_own_key_and_token(
    tmp_path: Path, given: dict[str, str], named: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSORTIUM_") and k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "node", "node", "serve"],
        cwd=tmp_path,
        env={**env, **given},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "node.db").exists()
