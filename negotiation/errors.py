"""One root for every exception the negotiation package defines, so a caller can catch them all at once.

Each keeps the base it had before (ProblemError is still a ValueError, and so on) and its import path;
NegotiationError is added alongside. This module imports nothing from the package, so every module can
import it.

Our exception hierarchy:

* NegotiationError
  + MessageRefused      negotiation/messages.py    a signed message the node will not act on (`reason`)
  + ProblemError        negotiation/matching.py    a malformed matching problem         (also ValueError)
  + RuleBookInvalid     negotiation/rules/book.py  a rule book with problems            (also ValueError)
  + ExpressionError     negotiation/rules/expr.py  a rule expression that does not parse
  |                                                or type-check                        (also ValueError)
  + EvaluationError     negotiation/rules/expr.py  a rule expression that cannot be
                                                   evaluated in a situation             (also ValueError)
"""

from __future__ import annotations


class NegotiationError(Exception):
    """The base of every exception defined in negotiation/."""
