"""Signed messages as another member (or an impostor) would send them."""

from __future__ import annotations

import json
import time
from typing import Any

from eth_account import Account

from negotiation.messages import Domain, new_id, new_nonce, parse, sign


def invitation_envelope(domain: Domain, key: str, rule_version: str, **over: Any) -> dict[str, Any]:
    """A well-formed Invitation from the key's address, signed by that key; `over` replaces fields before signing."""
    message = {
        "id": new_id(),
        "requester": Account.from_key(key).address,
        "sku": "FORMULA-900G",
        "quantity": 10,
        "neededBy": int(time.time()) + 86_400,
        "minShelfLifeDays": 0,
        "radiusKm": 50,
        "scenario": "routine_replenishment",
        "customerTier": "standard",
        "urgent": False,
        "ruleVersion": rule_version,
        "nonce": new_nonce(),
        "deadline": int(time.time()) + 600,
        **over,
    }
    return sign(domain, "Invitation", message, key).as_json()


def signed_copies(template: dict[str, Any], domain: Domain, key: str, n: int) -> list[bytes]:
    """`n` copies of a signed message (an envelope) as JSON bodies, each with a new id and nonce, signed by `key`:
    all valid, each admitted once (a supplier may offer several lots on one invitation)."""
    original = parse(template)
    out = []
    for _ in range(n):
        message = {**original.message, "id": new_id(), "nonce": new_nonce()}
        out.append(json.dumps(sign(domain, original.type, message, key).as_json()).encode())
    return out
