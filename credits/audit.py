"""The ledger's invariants, checked by ``manage.py check_ledger``."""

from __future__ import annotations

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from credits.models import Account, Entry, Hold, Transaction


def ledger_audit() -> list[str]:
    problems: list[str] = []
    total = Entry.objects.aggregate(s=Sum("amount"))["s"] or 0
    if total != 0:
        problems.append(f"all entries sum to {total}, not 0")
    unbalanced = (
        Transaction.objects.annotate(s=Sum("entries__amount"), n=Count("entries"))
        .filter(~Q(s=0) | Q(n__lt=2))
        .values_list("reference", "s", "n")
    )
    for reference, s, n in unbalanced:
        problems.append(f"transaction {reference} has {n} entries summing to {s}")
    drifted = (
        Account.objects.annotate(s=Sum("entries__amount", default=0))
        .exclude(balance=F("s"))
        .values_list("pk", "kind", "balance", "s")
    )
    for pk, kind, balance, s in drifted:
        problems.append(f"account {pk} ({kind}) caches {balance} but its entries sum to {s}")
    negative = Account.objects.filter(balance__lt=0, kind__in=["pool", "escrow"])
    for account in negative:
        problems.append(f"account {account.pk} ({account.kind}) is negative: {account.balance}")
    open_holds = (
        Hold.objects.filter(escrow=OuterRef("pk"), status=Hold.Status.OPEN)
        .values("escrow")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    escrows = (
        Account.objects.filter(kind=Account.Kind.ESCROW)
        .annotate(held=Coalesce(Subquery(open_holds), 0))
        .exclude(balance=F("held"))
        .values_list("pk", "balance", "held")
    )
    for pk, balance, held in escrows:
        problems.append(f"escrow {pk} holds {balance} but its open holds total {held}")
    for hold in Hold.objects.filter(refunded__gt=F("charged")):
        problems.append(f"hold {hold.reference} refunded {hold.refunded} of {hold.charged}")
    return problems
