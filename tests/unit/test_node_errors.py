"""Every exception defined in node/ derives from NodeError and is drawn in the tree of node/errors.py; every
refused request has exactly one HTTP status in node/api/errors.py, and its code is documented with that status
in the README's table of refusals."""

from __future__ import annotations

import re
from pathlib import Path

import node
from negotiation.wire import Refusal
from node import errors
from node.api.errors import REFUSAL_STATUS, STATUS_OF
from node.errors import NodeError, RequestError
from tests.helpers.exceptions import defined_in_package

README = Path(__file__).resolve().parents[2] / "README.md"


def _defined_in_package() -> set[type[BaseException]]:
    return defined_in_package(node, skip=("node.__main__", "node.cli"))  # running them starts the command line


def test_every_exception_in_the_package_is_rooted_and_drawn() -> None:
    found = _defined_in_package()
    assert {NodeError, RequestError} <= found
    doc = errors.__doc__ or ""
    for exc in found:
        assert issubclass(exc, NodeError), exc
        assert re.search(rf"^\s*[|* +]*[*+] {exc.__name__}\b", doc, re.M), f"{exc.__name__} is not in the tree"


def test_every_refused_request_has_one_status_and_nothing_else_does() -> None:
    refused = {e for e in _defined_in_package() if issubclass(e, RequestError) and e is not RequestError}
    assert set(STATUS_OF) == refused
    assert all(400 <= status < 600 for status in STATUS_OF.values())


def test_every_refused_request_is_documented_with_its_code_and_status() -> None:
    documented = {
        (int(status), code) for status, code in re.findall(r"^\| (\d{3}) \| `(\w+)` \|", README.read_text(), re.M)
    }
    missing = {(status, e.code) for e, status in STATUS_OF.items()} - documented
    assert not missing, f"not in the README's table of refusals: {sorted(missing)}"


def test_every_refusal_of_a_signed_message_has_its_status() -> None:
    assert set(REFUSAL_STATUS) == set(Refusal)
    assert all(400 <= status < 500 for status in REFUSAL_STATUS.values())
