"""The node's database: tables, the engine and its transactions, append-only records and their projections.

May import `node.domain` and `chain.canonical`/`chain.merkle` (pure); never `node.services` or `node.api`.
"""
