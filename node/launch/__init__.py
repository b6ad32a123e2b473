"""Starting nodes as real processes for `consortium up`; tests and benchmarks start theirs with the same NodeProcess.

The one room that may import every other: it composes, it is not composed.
"""
