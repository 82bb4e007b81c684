"""Amounts as people read them. The ledger and the API count integer cents of a credit
(API.md); pages and messages show credits with two decimals: 2500 → "25.00"."""

from __future__ import annotations

from decimal import Decimal

CENTS = 100


def credits_text(cents: int) -> str:
    """``cents`` as credits, with thousands separated: 123456 → "1,234.56", -250 → "-2.50"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), CENTS)
    return f"{sign}{whole:,}.{part:02d}"


def cents_of(amount: Decimal) -> int:
    """Credits as typed into a form (at most two decimals) in the ledger's cents."""
    return int(amount * CENTS)
