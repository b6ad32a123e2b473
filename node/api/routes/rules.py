"""HTTP routes of the rule books (docs/rules.md): what is in force, the versions held, proposing and
approving, the on-chain history, the sandbox, and what the active book computes for this node right now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from negotiation.rules.conflicts import find_conflicts
from node.api.deps import AddressDep, OperatorDep, RulesDep, SettingsDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import (
    ActiveRuleBookOut,
    ApprovedOut,
    BookAddedOut,
    ConflictOut,
    DecisionsOut,
    HeldBookOut,
    ProposedOut,
    RuleVersionOut,
    SandboxOut,
)
from node.api.schemas import TryIn
from node.errors import NotFound
from node.services.rules_keeper import conflict_json, decisions_now
from node.services.sandbox import run_sandbox

router = APIRouter(prefix="/rules", tags=["rules"], responses=ERROR_RESPONSES)
# A rule book version: keccak-256 of its canonical JSON. Anything else is refused before it reaches a peer's URL.
Version = Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$", description="0x + 64 lowercase hex digits")]
operator = [OperatorDep]


@router.get("/active")
def active(rules: RulesDep) -> ActiveRuleBookOut:
    """The version the chain says is in force, and whether this node can run it (409 if not)."""
    a = rules.active()
    return ActiveRuleBookOut(
        version=a.policy.version, label=a.policy.book.label, block=a.block, in_force_since_block=a.since_block
    )


@router.get("/history")
def history(rules: RulesDep) -> list[RuleVersionOut]:
    return [RuleVersionOut.model_validate(v) for v in rules.history()]


@router.get("/books", dependencies=operator)
def held(rules: RulesDep) -> list[HeldBookOut]:
    return [HeldBookOut.model_validate(b) for b in rules.held()]


@router.get("/books/{version}")
def book(version: Version, rules: RulesDep) -> Response:
    """The canonical JSON of a version: public, so that every member can fetch it and check its hash."""
    return Response(content=rules.body(version), media_type="application/json")


@router.post("/books", status_code=201, dependencies=operator)
def add(rules: RulesDep, body: dict[str, Any] = Body(...)) -> BookAddedOut:
    """Keep a rule book (validated; its conflicts listed: a book with any cannot be proposed)."""
    checked, conflicts = rules.add(body)
    return BookAddedOut(
        version=checked.version,
        label=checked.book.label,
        conflicts=[ConflictOut.model_validate(conflict_json(c)) for c in conflicts],
    )


@router.get("/books/{version}/conflicts", dependencies=operator)
def conflicts(version: Version, rules: RulesDep) -> list[ConflictOut]:
    checked = rules.book(version)
    if checked is None:
        raise NotFound(f"this node holds no rule book {version}", version=version)
    return [ConflictOut.model_validate(conflict_json(c)) for c in find_conflicts(checked)]


@router.post("/books/{version}/propose", dependencies=operator)
def propose(version: Version, rules: RulesDep) -> ProposedOut:
    return ProposedOut.model_validate(rules.propose(version))


@router.post("/books/{version}/approve", dependencies=operator)
def approve(version: Version, rules: RulesDep) -> ApprovedOut:
    return ApprovedOut.model_validate(rules.approve(version))


@router.post("/try", dependencies=operator)
def try_book(body: TryIn, rules: RulesDep, me: AddressDep, settings: SettingsDep) -> SandboxOut:
    """The sandbox: this node's history from `from` to `to` replayed under the given rule book and the
    one in force (or `against`), side by side. Changes nothing."""
    proposed, _conflicts = rules.add(body.book)
    if body.against:
        current = rules.book(body.against)
        if current is None:
            raise NotFound(f"this node holds no rule book {body.against}", version=body.against)
    else:
        current = rules.active().policy.checked
    report = run_sandbox(rules.engine, me, current, proposed, body.start, body.end, settings.safety_stock)
    return SandboxOut.model_validate(report)


@router.get("/decisions", dependencies=operator)
def decisions(rules: RulesDep, settings: SettingsDep) -> DecisionsOut:
    """What the active rule book computes for this node now: each SKU's safety level (with the demand
    behind it) and the business rules that fire, as action suggestions."""
    return DecisionsOut.model_validate(decisions_now(rules, settings.safety_stock))
