"""Every exception defined in negotiation/ derives from NegotiationError, keeps its old base and import path,
and is drawn in the tree of negotiation/errors.py."""

from __future__ import annotations

import re

import pytest

import negotiation
from negotiation import errors
from negotiation.errors import NegotiationError
from negotiation.matching import ProblemError
from negotiation.messages import MessageRefused
from negotiation.rules.book import RuleBookInvalid
from negotiation.rules.expr import EvaluationError, ExpressionError
from tests.helpers.exceptions import defined_in_package

KNOWN: list[tuple[type[Exception], type[Exception]]] = [
    (MessageRefused, Exception),
    (ProblemError, ValueError),
    (RuleBookInvalid, ValueError),
    (ExpressionError, ValueError),
    (EvaluationError, ValueError),
]


@pytest.mark.parametrize(("exc", "old_base"), KNOWN, ids=lambda e: e.__name__)
def test_derives_from_root_and_keeps_old_base(exc: type[Exception], old_base: type[Exception]) -> None:
    assert issubclass(exc, NegotiationError)
    assert issubclass(exc, old_base)


def _defined_in_package() -> set[type[BaseException]]:
    return defined_in_package(negotiation)


def test_every_exception_in_the_package_is_rooted_and_drawn() -> None:
    found = _defined_in_package()
    assert {e for e, _ in KNOWN} | {NegotiationError} <= found
    doc = errors.__doc__ or ""
    for exc in found:
        assert issubclass(exc, NegotiationError), exc
        drawn = re.search(rf"^\s*[*+] {exc.__name__}\b", doc, re.M)
        assert drawn, f"{exc.__name__} is missing from the tree in negotiation/errors.py"
