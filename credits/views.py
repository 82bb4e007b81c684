"""The dashboard's credits page: the owner's balance, ledger and spending, from the same
selectors as the API."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render

from city.identity.views import owner_required
from credits import selectors
from credits.charts import bar_chart
from credits.models import Entry

PAGE_SIZE = 25
CHART_DAYS = 30

# What each entry on an owner's pool means to the owner; the API's kind is shown beside it.
DESCRIPTIONS = {
    Entry.Kind.GRANT: "Credits granted",
    Entry.Kind.HOLD: "Budget held for a task",
    Entry.Kind.RELEASE: "Hold returned",
    Entry.Kind.CHARGE: "Charged for a task",
    Entry.Kind.REFUND: "Refund of a charge",
}


@owner_required
def credits_page(request):
    """Balance, the ledger newest first (25 a page), and what was spent on each of 30 days."""
    owner = request.user.owner
    # The transaction comes in the same query: a grant's memo says what it was for.
    entries = selectors.entry_list(owner=owner).select_related("transaction")
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(entry, DESCRIPTIONS.get(entry.kind, entry.get_kind_display())) for entry in page]
    days = selectors.spend_by_day(owner=owner, days=CHART_DAYS)
    return render(
        request,
        "dashboard/credits.html",
        {
            "balance": selectors.balance_get(owner=owner),
            "page": page,
            "rows": rows,
            "chart": bar_chart(days),
            "chart_days": CHART_DAYS,
        },
    )
