"""Reads of the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

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
    if agent is not None:
        return agent_balances([agent])[agent.pk]
    balances = dict(Account.objects.filter(owner=owner).values_list("kind", "balance"))
    return Balance(
        available=balances.get(Account.Kind.POOL, 0), held=balances.get(Account.Kind.ESCROW, 0)
    )


def agent_balances(agents) -> dict[str, Balance]:
    """``balance_get`` of each of ``agents`` (by id), in one query."""
    found: dict[str, dict[str, int]] = {agent.pk: {} for agent in agents}
    rows = Account.objects.filter(agent__in=list(found)).values_list("agent_id", "kind", "balance")
    for agent_id, kind, balance in rows:
        found[agent_id][kind] = balance
    return {
        agent_id: Balance(
            available=kinds.get(Account.Kind.EARNINGS, 0), held=kinds.get(Account.Kind.ESCROW, 0)
        )
        for agent_id, kinds in found.items()
    }


def entry_list(*, owner: Owner | None = None, agent: Agent | None = None) -> QuerySet[Entry]:
    """Entries of the principal's spendable account, newest first."""
    kind = Account.Kind.EARNINGS if agent is not None else Account.Kind.POOL
    holder = {"account__agent": agent} if agent is not None else {"account__owner": owner}
    return Entry.objects.filter(account__kind=kind, **holder).order_by("-id")


class DaySpend(NamedTuple):
    day: date
    amount: int


def spend_by_day(*, owner: Owner, days: int = 30, today: date | None = None) -> list[DaySpend]:
    """What the owner spent on each of the last ``days`` days up to ``today``, oldest first,
    zero days included: charges net of refunds out of its pool, in cents.

    A day is a date in the current time zone, and money counts on the day it moved: a refund
    counts on the day it was given back, not the day of its charge, so a day that got back more
    than it was charged is negative. Holds and their releases are not spending.
    """
    tz = timezone.get_current_timezone()
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, time.min), tz)
    end = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min), tz)
    net = (
        Entry.objects.filter(
            account__owner=owner,
            account__kind=Account.Kind.POOL,
            kind__in=[Entry.Kind.CHARGE, Entry.Kind.REFUND],
            created_at__gte=start,
            created_at__lt=end,
        )
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("day", "total")
    )
    # A charge is negative in the pool, a refund positive: what was spent is the opposite.
    spent = {day: -total for day, total in net}
    return [DaySpend(day, spent.get(day, 0)) for day in (first + timedelta(n) for n in range(days))]
