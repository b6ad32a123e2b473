"""What a service answers for the API is declared as a TypedDict in node/services; the API's `*Out` model is
validated from it. Each pair names the same fields, so nothing the service computes is dropped unseen and no
field the API promises is missing from what the service builds."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel

from negotiation.rules.sandbox import SandboxReport
from node.api import responses as out
from node.services import joint_purchases, loans, negotiator, rules_keeper, sandbox, settlements, transfers
from node.services.disputes import DisputeOpened
from node.services.router import MessageAccepted
from node.store.tables import LoanBase


def keys(typed_dict: type) -> set[str]:
    return set(typed_dict.__required_keys__) | set(typed_dict.__optional_keys__)  # type: ignore[attr-defined]


SAME_FIELDS: list[tuple[type, type[BaseModel]]] = [
    (DisputeOpened, out.DisputeOpenedOut),
    (joint_purchases.JointPurchaseMade, out.JointPurchaseMadeOut),
    (joint_purchases.ShareShown, out.ShareOut),
    (joint_purchases.ShareAccepted, out.ShareAcceptedOut),
    (joint_purchases.JointPurchaseShown, out.JointPurchaseOut),
    (loans.LoanColumns, LoanBase),
    (loans.LoanShown, out.LoanOut),
    (transfers.PlanMade, out.PlanOut),
    (transfers.AcceptanceMade, out.AcceptanceOut),
    (transfers.PlanEvidence, out.PlanEvidenceOut),
    (transfers.ReceiptConfirmed, out.ReceivedOut),
    (negotiator.Triggered, out.TriggeredOut),
    (rules_keeper.HeldBook, out.HeldBookOut),
    (rules_keeper.Proposed, out.ProposedOut),
    (rules_keeper.Approved, out.ApprovedOut),
    (rules_keeper.RuleVersionShown, out.RuleVersionOut),
    (rules_keeper.ConflictShown, out.ConflictOut),
    (rules_keeper.Decisions, out.DecisionsOut),
    (rules_keeper.LocationSafety, out.LocationSafetyOut),
    (settlements.StatementState, out.StatementStateOut),
    (settlements.Contributions, out.ContributionsOut),
]


@pytest.mark.parametrize(("answer", "model"), SAME_FIELDS, ids=lambda t: t.__name__)
def test_a_service_answer_names_the_fields_of_its_api_model(answer: type, model: type[BaseModel]) -> None:
    assert keys(answer) == set(model.model_fields)


def test_a_sku_decision_carries_the_actions_beside_what_the_api_shows() -> None:
    # The actions are the node's own (a request_quote is sent): the API shows the suggestions' text only.
    assert keys(rules_keeper.SkuDecision) == set(out.SkuDecisionOut.model_fields) | {"actions"}


def test_the_sandbox_run_is_the_report_timed() -> None:
    report = SandboxReport("0xcurrent", "0xproposed", date(2026, 11, 1), date(2026, 11, 7))
    assert keys(sandbox.SandboxRun) == set(report.as_dict()) | {"seconds"}
    assert set(out.SandboxOut.model_fields) <= keys(sandbox.SandboxRun)


def test_a_message_accepted_answers_every_part_the_api_documents() -> None:
    assert set(out.MessageAcceptedOut.model_fields) <= keys(MessageAccepted)
