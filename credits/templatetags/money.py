"""``{% load money %}{{ amount|credits }}``: the ledger's cents as credits (2500 → 25.00)."""

from django import template

from credits.money import credits_text

register = template.Library()


@register.filter
def credits(cents) -> str:
    """Cents as credits with two decimals; empty (``None``, "") stays empty."""
    if cents is None or cents == "":
        return ""
    return credits_text(int(cents))
