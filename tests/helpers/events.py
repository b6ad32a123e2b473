"""An `Anchored` event as the pure auditor reads it (chain/audit.py), for tests that build histories by hand."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    seq: int
    root: bytes
    prev_root: bytes
    leaf_count: int
    tx_hash: str
