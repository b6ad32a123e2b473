"""The replay guard's read-ahead (node/services/router.py read_ahead_seen): a group of messages asks the
database once which were admitted before; each message then decides from that answer, exactly as its own query
would have, and a key two messages of the group share is left to the guard's own query."""

from __future__ import annotations

from pathlib import Path

from node.services.router import SEEN_AHEAD, _remember, read_ahead_seen
from node.store.engine import make_engine, session_scope

A, B = "0x" + "aa" * 20, "0x" + "bb" * 20


def test_each_message_decides_from_the_groups_one_read_as_its_own_query_would(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    with session_scope(engine) as s:
        assert _remember(s, A, 1, "0x01") and _remember(s, B, 7, "0x07")
    group = [
        (A, 1, "0x01"),  # admitted before
        (A, 2, "0x07"),  # a new nonce, but an id admitted before
        (A, 3, "0x03"),  # new
        (B, 5, "0x05"),  # new, and again below: left to the guard's own query
        (B, 5, "0x05"),
    ]
    with session_scope(engine) as s:
        read_ahead_seen(s, group)
        assert s.info[SEEN_AHEAD] == {(A, 1, "0x01"): True, (A, 2, "0x07"): True, (A, 3, "0x03"): False}
        assert [_remember(s, *key) for key in group] == [False, False, True, True, False]
        assert s.info[SEEN_AHEAD] == {}  # each answer used once, by its message
    with session_scope(engine) as s:  # what was admitted is remembered for the next group
        read_ahead_seen(s, [(A, 3, "0x03"), (B, 5, "0x05"), (B, 6, "0x06")])
        assert [_remember(s, *key) for key in [(A, 3, "0x03"), (B, 5, "0x05"), (B, 6, "0x06")]] == [
            False,
            False,
            True,
        ]
    engine.dispose()
