"""Pure rules of the node's own pool (movements, postings, timeline replay): plain data in, plain data out.

May import `node.errors` and the pure parts of `chain`; never the store, services or the API.
"""
