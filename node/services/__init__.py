"""What a node does beyond one request: the protocol steps, anchoring, the rule keeper, the sandbox's input.

May import `node.store`, `node.domain`, `negotiation` (pure decisions) and `chain` (web3 edges); never `node.api`.
"""
