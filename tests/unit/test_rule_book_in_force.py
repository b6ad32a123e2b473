"""Which block a node names for the rule book in force: the one the version came into force at, read once from the
registry, beside the block the chain was last read at. The registry is a stand-in: this is the keeper's own logic;
real registries answer in tests/chain/test_rule_rollout.py."""

from __future__ import annotations

from pathlib import Path

import node.store.tables  # noqa: F401  (the tables, for create_all)
from chain.rules_client import OnChainVersion
from node.services.rules_keeper import RuleKeeper, decisions_now, governance_terms
from node.store.engine import make_engine

BOOK = Path(__file__).resolve().parents[2] / "testdata" / "rulebook.yaml"


class Registry:
    """A RuleRegistry whose head has moved on since the version in force was scheduled."""

    def __init__(self, version: OnChainVersion, head: int) -> None:
        self.scheduled = version
        self.head = head
        self.versions_read = 0

    def active(self) -> tuple[str, int]:
        return self.scheduled.version, self.head

    def version(self, version: str) -> OnChainVersion:
        assert version == self.scheduled.version
        self.versions_read += 1
        return self.scheduled


def keeper_under(tmp_path: Path, activated_at: int, head: int) -> tuple[RuleKeeper, Registry]:
    keeper = RuleKeeper(
        make_engine(f"sqlite:///{tmp_path / 'node.db'}"),
        "http://chain",
        "0x" + "11" * 20,
        None,
        "0x" + "22" * 32,
        lambda: "http://node",
    )
    checked = keeper.add_file(BOOK)
    on_chain = OnChainVersion(
        checked.version,
        "0x" + "00" * 32,
        "0x" + "33" * 20,
        activated_at - 1,
        activated_at,
        "",
        (),
        governance_terms(checked),
    )
    registry = Registry(on_chain, head)
    keeper._reader = registry  # type: ignore[assignment]  # the stand-in answers the two calls active() makes
    return keeper, registry


def test_the_book_in_force_names_the_block_it_came_into_force_at_not_the_last_read(tmp_path: Path) -> None:
    keeper, registry = keeper_under(tmp_path, activated_at=133, head=193)
    active = keeper.active()
    assert (active.since_block, active.block) == (133, 193)
    registry.head = 194
    assert (keeper.active().since_block, keeper.active().block) == (133, 194)
    assert registry.versions_read == 1  # fixed once scheduled: read once


def test_the_decisions_name_both_blocks(tmp_path: Path) -> None:
    keeper, _ = keeper_under(tmp_path, activated_at=133, head=193)
    decisions = decisions_now(keeper, 0)
    assert (decisions["in_force_since_block"], decisions["block"]) == (133, 193)
