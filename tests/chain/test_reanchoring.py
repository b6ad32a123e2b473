"""An anchor the chain loses (a reorg, a chain restored from an older state) is anchored again, exactly as it was
formed, and anchoring goes on; /health says degraded until then, and the auditor's verify passes after.
Its own module: it rolls back the module's Anvil, which no other test may share."""

from __future__ import annotations

from typing import Any

import httpx

from chain.anchor_client import AnchorReader
from tests.helpers import consortium, issue, seed, wait_anchored
from tests.helpers.nodes import NodeFactory, until


def rpc(url: str, method: str, *params: Any) -> Any:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    assert "error" not in answer, answer
    return answer["result"]


def batches(node: Any) -> list[dict[str, Any]]:
    return list(httpx.get(f"{node.url}/audit/batches").json())


def test_a_batch_the_chain_lost_is_anchored_again_with_the_same_root_and_anchoring_goes_on(
    nodes: NodeFactory,
) -> None:
    node = nodes.new("rolled-back")
    seed(node)
    wait_anchored(node)
    three = {"movements": [{"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1}] * 3}
    with node.client() as c:
        for _ in range(3):  # three records committed together (one batch request), anchored together
            c.post("/ledger/movements/batch", json=three).raise_for_status()
            wait_anchored(node)
    before = batches(node)
    assert [b["seq"] for b in before] == [1, 2, 3, 4]
    head = int(rpc(nodes.anvil.rpc_url, "eth_blockNumber"), 16)
    # The chain forgets every block from the one that held batch 2, as a reorg or a restore would: three
    # anchors lost at once.
    depth = head - before[1]["block_number"] + 1
    rpc(nodes.anvil.rpc_url, "anvil_rollback", depth)
    assert depth >= 3

    issue(node, 1)  # the node learns of the loss at its next step
    wait_anchored(node)
    after = until(lambda: [b for b in batches(node) if b["status"] == "anchored"] if len(batches(node)) == 5 else [])
    assert [b["seq"] for b in after] == [1, 2, 3, 4, 5]
    assert [(b["root"], b["prev_root"]) for b in after[:4]] == [(b["root"], b["prev_root"]) for b in before]
    # The same signed transactions again (same nonces, same data): the chain holds batches 2-4 as they were formed.
    reader = AnchorReader(nodes.anvil.rpc_url, nodes.deployment.anchors)
    assert [reader.get_anchor(node.address, "ledger", seq).root.hex() for seq in (1, 2, 3, 4, 5)] == [  # type: ignore[union-attr]
        b["root"] for b in after
    ]
    assert "no longer holds ledger batches [2, 3, 4]" in node.process.log_path.read_text()
    assert until(lambda: httpx.get(f"{node.url}/health").json()["status"] == "ok")
    result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url, "--check-paths")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_anchor_counts_as_final_only_after_its_confirmations_and_health_says_so(nodes: NodeFactory) -> None:
    node = nodes.new("confirming", CONSORTIUM_ANCHOR_CONFIRMATIONS="3")
    seed(node)
    wait_anchored(node)

    def health() -> dict[str, Any]:
        return dict(httpx.get(f"{node.url}/health").json())

    unconfirmed = until(lambda: (h := health())["anchoring"]["unconfirmed_batches"] == 1 and h)
    assert unconfirmed["status"] == "degraded" and unconfirmed["anchoring"]["confirmations"] == 3
    rpc(nodes.anvil.rpc_url, "anvil_mine", 3)  # three blocks on top: final
    assert until(lambda: health()["status"] == "ok")
    assert health()["anchoring"]["unconfirmed_batches"] == 0
