"""Reads of the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from city.identity.models import Agent, Owner
from credits.models import Account, Entry


@dataclass(frozen=True)
class Balance:
    available: int
    held: int

    @property
    def total(self) -> int:
        return self.available + self.held


def balance_get(*, owner: Owner | None = None, agent: Agent | None = None) -> Balance:
    holder = {"agent": agent} if agent is not None else {"owner": owner}
    balances = dict(Account.objects.filter(**holder).values_list("kind", "balance"))
    spend = Account.Kind.EARNINGS if agent is not None else Account.Kind.POOL
    return Balance(available=balances.get(spend, 0), held=balances.get(Account.Kind.ESCROW, 0))


def entry_list(*, owner: Owner | None = None, agent: Agent | None = None) -> QuerySet[Entry]:
    """Entries of the principal's spendable account, newest first."""
    kind = Account.Kind.EARNINGS if agent is not None else Account.Kind.POOL
    holder = {"account__agent": agent} if agent is not None else {"account__owner": owner}
    return Entry.objects.filter(account__kind=kind, **holder).order_by("-id")
