"""The HTTP edge of a node: the app, its dependencies, one router per area, request and response types.

May import `node.services`, `node.store`, `node.domain`, `negotiation`, `chain`; nothing imports it but the
launcher and the CLI.
"""
