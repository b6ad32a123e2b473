"""Every declared message type has exactly one handler among the node's step groups, and none has a handler
for a type that is not declared: the router refuses to be built otherwise."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from negotiation.wire import KIND_OF, OFFER, MessageKind, MessageType, OfferFields, OfferMessage
from node.errors import HandlersIncomplete
from node.services.consignments import Consignments
from node.services.disputes import Disputes
from node.services.invitations import Invitations
from node.services.joint_purchases import JointPurchases
from node.services.loans import Loans
from node.services.quotes import Quotes
from node.services.router import HANDLES, handlers_of, handles
from node.services.settlements import Settlements
from node.services.steps import StepGroups
from node.services.transfers import Transfers

GROUP_CLASSES = (Invitations, Transfers, Disputes, Consignments, JointPurchases, Loans, Quotes, Settlements)


def _bare(cls: type) -> Any:
    """A step group without its constructor: handlers_of reads the class's marked methods, nothing else."""
    return object.__new__(cls)


def test_the_step_groups_are_exactly_what_the_node_builds() -> None:
    annotations = inspect.get_annotations(StepGroups, eval_str=True)
    assert set(annotations.values()) == set(GROUP_CLASSES)


def test_every_declared_type_has_exactly_one_handler() -> None:
    handlers = handlers_of(_bare(c) for c in GROUP_CLASSES)
    assert set(handlers) == set(MessageType) == set(KIND_OF)
    marked = [
        getattr(member, HANDLES)
        for c in GROUP_CLASSES
        for _name, member in inspect.getmembers(c, inspect.isfunction)
        if hasattr(member, HANDLES)
    ]
    assert sorted(marked) == sorted(MessageType), "a type handled twice, or a handler of an undeclared type"


def test_a_type_without_handler_is_refused() -> None:
    groups = [_bare(c) for c in GROUP_CLASSES if c is not Quotes]
    with pytest.raises(HandlersIncomplete, match="QuoteRequest"):
        handlers_of(groups)


def test_a_second_handler_for_a_type_is_refused() -> None:
    class Rival:
        @handles(OFFER)
        def on_offer(self, *_args: object) -> dict[str, Any]:
            return {}

    with pytest.raises(HandlersIncomplete, match=r"Rival\.on_offer"):
        handlers_of([*(_bare(c) for c in GROUP_CLASSES), Rival()])


def test_a_handler_needs_a_declared_kind() -> None:
    # `handles` takes a declaration in MESSAGES: a name, or a kind declared elsewhere, has no place in the tables.
    with pytest.raises(TypeError, match="not a message kind declared"):
        handles("Offer")  # type: ignore[arg-type]
    stray = MessageKind(MessageType.OFFER, OfferFields, OfferMessage, ())
    with pytest.raises(TypeError, match="not a message kind declared"):
        handles(stray)
