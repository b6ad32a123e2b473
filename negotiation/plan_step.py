"""The requester's plan as one pure decision: every open invitation, every offer received for them, the rule
book in force and the distances in; the matching problem, the plan, its hashes and its actions out.

The node reads the inputs in one short transaction, asks the chain for names and coordinates outside it,
calls `decide_plan`, and writes what it returns in a second transaction (node/services/transfers.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from negotiation.matching import MatchingProblem, SolverParameters, TransferPlan, plan_hashes, solve
from negotiation.planning import OpenNeed, PlanActions, ReceivedOffer, build_problem, plan_actions
from negotiation.rules.engine import (
    DEFAULT_MAX_TRANSIT_HOURS,
    OfferedLot,
    Policy,
    RequestFacts,
    ScenarioTerms,
    SkuFacts,
)


@dataclass(frozen=True)
class OpenInvitation:
    """One of the requester's open invitations, as the plan reads it."""

    id: str
    sku: str
    sku_facts: SkuFacts  # the requester's own master data of the SKU: its prices, minor units
    facts: RequestFacts
    radius_km: int
    consignment: bool


@dataclass(frozen=True)
class PlanDecision:
    problem: MatchingProblem
    parameters: SolverParameters
    result: TransferPlan
    hashes: dict[str, str]
    actions: PlanActions
    terms: dict[str, ScenarioTerms]  # invitation id -> its scenario's terms under the book in force
    needs: list[OpenNeed]

    def consigned(self, invitation: OpenInvitation) -> bool:
        return invitation.consignment or self.terms[invitation.id].ownership == "consignment"

    def cells(self) -> dict[str, Any]:
        return {n.invitation: list(self.terms[n.invitation].branches) for n in self.needs}


def decide_plan(
    requester: str,
    requester_name: str,
    invitations: list[OpenInvitation],
    offers: list[ReceivedOffer],
    distances: dict[str, int],
    policy: Policy,
    offer_invitation: Mapping[str, str],
    parameters: SolverParameters | None = None,
) -> PlanDecision:
    """`distances`: km from the requester to each supplier; `offer_invitation`: offer id -> invitation id."""
    terms, needs, preferences = {}, [], {}
    for i in sorted(invitations, key=lambda i: i.id):
        t = policy.request_terms(i.facts, i.sku_facts)
        terms[i.id] = t.scenario
        needs.append(
            OpenNeed(i.id, i.sku, i.facts.quantity, t.min_shelf_life_days, t.max_transit_hours, t.shortage_penalty)
        )
        # The invitation's weights as money per unit over its best-scoring offer.
        candidates = [
            OfferedLot(o.id, o.shelf_life_days, distances[o.supplier], o.unit_price, o.quantity)
            for o in offers
            if o.sku == i.sku
        ]
        preferences[i.id] = policy.preferences(i.facts, i.sku_facts, t.scenario, candidates)
    problem = build_problem(
        requester,
        needs,
        offers,
        distances,
        policy,
        max(i.radius_km for i in invitations),
        DEFAULT_MAX_TRANSIT_HOURS,
        # Never read: every need carries its own request's penalty. Evaluating the formula here, for no SKU,
        # failed every plan under a book whose penalty reads `sku.*`.
        0,
        preferences,
    )
    params = parameters or SolverParameters()
    result = solve(problem, params)
    # Cost sharing (joint purchase): the requester pays its share of the freight, the supplier the rest.
    shares = {o.id: terms[offer_invitation[o.id]].requester_freight_share for o in offers}
    actions = plan_actions(
        result, offers, distances, policy, requester_name, {n.invitation: n.sku for n in needs}, shares
    )
    return PlanDecision(problem, params, result, plan_hashes(problem, params, result), actions, terms, needs)
