"""Starting nodes as real processes: `consortium up` (the local consortium) and the nodes tests and benchmarks run.

The one room that may import every other: it composes, it is not composed.
"""
