"""The chain tests that matter most, run again on Ganache (npm `ganache`), a second Ethereum implementation,
so that nothing the node does depends on Anvil's quirks (docs/chains.md).

The tests are the very functions of their own modules, imported here: pytest collects them in this module,
whose `CHAIN` makes every chain fixture (tests/helpers/chains.py) start Ganache instead of Anvil. Left out:
what only exists on Anvil (restarting on a state file; `anvil_rollback`, which the re-anchoring test uses to
drop a block: Ganache cannot roll back to a block it has no snapshot of).
"""

from __future__ import annotations

from chain.ganache import GanacheProcess
from tests.chain.test_anchoring_and_audit import (
    test_audit_verify_passes_on_an_honest_node,
    test_crash_after_sending_before_recording_does_not_anchor_twice,
    test_export_then_verify_offline_and_a_forged_export_fails,
    test_record_edited_in_the_database_after_anchoring_is_caught,
)
from tests.chain.test_contracts import (
    chain,
    test_non_member_cannot_anchor,
    test_on_chain_proof_check_accepts_real_proofs_and_refuses_tampered_ones,
    test_only_the_admin_adds_and_removes_members,
    test_removed_member_can_no_longer_anchor,
    test_sequence_numbers_strictly_increase_and_chain_previous_roots,
    test_the_members_command_adds_lists_and_removes_a_member,
    test_verify_anchored_checks_against_the_stored_root,
)
from tests.chain.test_disputes import test_only_the_arbitrators_ruling_closes_a_dispute_and_both_sides_anchor_it
from tests.chain.test_ethers_client import test_a_node_admits_an_invitation_an_ethers_client_signed
from tests.chain.test_negotiation import (
    test_forged_replayed_expired_and_non_member_messages_are_refused_and_change_nothing,
)
from tests.chain.test_rule_governance import (
    rules,
    test_below_quorum_or_without_headquarters_nothing_changes_at_quorum_it_activates_after_the_delay,
    test_only_members_propose_and_only_on_the_latest_version,
)
from tests.chain.test_transfers import (
    test_consignment_transfer_moves_custody_but_not_ownership,
    test_story_one_invite_offer_plan_ship_receive_and_both_books_verify,
    test_two_requesters_competing_for_one_suppliers_stock_never_over_allocate,
)

CHAIN = GanacheProcess

__all__ = [
    "chain",
    "rules",
    "test_a_node_admits_an_invitation_an_ethers_client_signed",
    "test_audit_verify_passes_on_an_honest_node",
    "test_below_quorum_or_without_headquarters_nothing_changes_at_quorum_it_activates_after_the_delay",
    "test_consignment_transfer_moves_custody_but_not_ownership",
    "test_crash_after_sending_before_recording_does_not_anchor_twice",
    "test_export_then_verify_offline_and_a_forged_export_fails",
    "test_forged_replayed_expired_and_non_member_messages_are_refused_and_change_nothing",
    "test_non_member_cannot_anchor",
    "test_on_chain_proof_check_accepts_real_proofs_and_refuses_tampered_ones",
    "test_only_members_propose_and_only_on_the_latest_version",
    "test_only_the_admin_adds_and_removes_members",
    "test_only_the_arbitrators_ruling_closes_a_dispute_and_both_sides_anchor_it",
    "test_record_edited_in_the_database_after_anchoring_is_caught",
    "test_removed_member_can_no_longer_anchor",
    "test_sequence_numbers_strictly_increase_and_chain_previous_roots",
    "test_story_one_invite_offer_plan_ship_receive_and_both_books_verify",
    "test_the_members_command_adds_lists_and_removes_a_member",
    "test_two_requesters_competing_for_one_suppliers_stock_never_over_allocate",
    "test_verify_anchored_checks_against_the_stored_root",
]
