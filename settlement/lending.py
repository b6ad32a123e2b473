"""A loaned part's money (docs/settlement.md, section 4b). Pure.

A lender lends units to a borrower for a fee per unit and day, due back at a stated moment; what is not
back by then is sold to the borrower at the unit sale price agreed in the loan. Days are counted from the
moment of lending, each day begun counting whole, at least one.
"""

from __future__ import annotations

SECONDS_PER_DAY = 86_400


def loan_days(lent_at: int, until: int) -> int:
    """Days begun between two moments (unix seconds), at least 1."""
    return max(1, -(-(until - lent_at) // SECONDS_PER_DAY))


def return_fee(quantity: int, fee_per_unit_day: int, lent_at: int, returned_at: int) -> int:
    """The fee for units returned at `returned_at` (the lender's record of the return)."""
    return quantity * fee_per_unit_day * loan_days(lent_at, returned_at)


def sale_amount(quantity: int, unit_sale_price: int) -> int:
    """Units kept past the due time, sold at the loan's unit sale price."""
    return quantity * unit_sale_price


def kept_fee(quantity: int, fee_per_unit_day: int, lent_at: int, due_at: int) -> int:
    """The fee for units kept until the due time (they were on loan until then)."""
    return quantity * fee_per_unit_day * loan_days(lent_at, due_at)
