"""Every write to the ledger. Nothing else creates ``Transaction`` or ``Entry`` rows.

Each movement is one database transaction that locks the accounts it touches in primary-key
order (so two movements over the same accounts cannot deadlock) and checks balances only inside
that lock (checking before it lets two debits both pass, the bug of django-oscar-accounts). A
movement's ``reference`` is unique: posting it again returns the first transaction instead of
moving money twice, so a retried job is harmless.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from city.models import Agent, Owner
from credits.models import Account, Entry, Hold, Transaction


class CreditsError(Exception):
    """Base of the ledger's domain errors."""


class InsufficientCredits(CreditsError):
    def __init__(self, *, available: int, required: int):
        self.available = available
        self.required = required
        super().__init__(f"available balance {available} is below the {required} required")


class InvalidAmount(CreditsError):
    pass


class HoldNotOpen(CreditsError):
    pass


class RefundExceedsCharge(CreditsError):
    pass


@dataclass(frozen=True)
class Leg:
    account_id: int
    amount: int
    kind: str


# Accounts


def accounts_open_for_owner(*, owner: Owner) -> None:
    holder_accounts(owner=owner)


def accounts_open_for_agent(*, agent: Agent) -> None:
    holder_accounts(agent=agent)


def platform_account(kind: str) -> Account:
    account, _ = Account.objects.get_or_create(kind=kind, owner=None, agent=None)
    return account


def holder_accounts(
    *, owner: Owner | None = None, agent: Agent | None = None
) -> tuple[Account, Account]:
    """(spendable, escrow) accounts of an owner or an agent, opened on first use."""
    holder = {"agent": agent} if agent is not None else {"owner": owner}
    spend_kind = Account.Kind.EARNINGS if agent is not None else Account.Kind.POOL
    found = {account.kind: account for account in Account.objects.filter(**holder)}
    for kind in (spend_kind, Account.Kind.ESCROW):
        if kind not in found:
            found[kind], _ = Account.objects.get_or_create(**holder, kind=kind)
    return found[spend_kind], found[Account.Kind.ESCROW]


def spend_account(*, owner: Owner | None = None, agent: Agent | None = None) -> Account:
    """The account a principal spends from: an owner's pool or an agent's earnings."""
    return holder_accounts(owner=owner, agent=agent)[0]


# The posting primitive


def _lock(*account_ids: int) -> dict[int, Account]:
    ids = sorted(set(account_ids))
    # Primary-key order: every movement takes its locks in the same order.
    locked = Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    return {a.pk: a for a in locked}


def _post(
    *,
    kind: str,
    reference: str,
    subject: str,
    legs: list[Leg],
    locked: dict[int, Account],
    memo: str = "",
) -> Transaction:
    """Write one balanced transaction over accounts the caller has already locked."""
    legs = [leg for leg in legs if leg.amount != 0]
    if sum(leg.amount for leg in legs) != 0:
        raise CreditsError(f"unbalanced transaction {reference}")
    txn = Transaction.objects.create(kind=kind, reference=reference, subject=subject, memo=memo)
    entries = []
    for leg in legs:
        account = locked[leg.account_id]
        account.balance += leg.amount
        entries.append(
            Entry(
                transaction=txn,
                account=account,
                amount=leg.amount,
                kind=leg.kind,
                subject=subject,
                balance_after=account.balance,
            )
        )
    Entry.objects.bulk_create(entries)
    touched = {leg.account_id: locked[leg.account_id] for leg in legs}
    Account.objects.bulk_update(touched.values(), ["balance"])
    return txn


def _existing(reference: str) -> Transaction | None:
    return Transaction.objects.filter(reference=reference).first()


# Movements


@transaction.atomic
def grant_issue(
    *,
    owner: Owner | None = None,
    agent: Agent | None = None,
    amount: int,
    reference: str | None = None,
    memo: str = "",
) -> Transaction:
    """Platform funding → the owner's pool (or an agent's earnings)."""
    if amount < 1:
        raise InvalidAmount("a grant must be at least 1 cent")
    target = spend_account(owner=owner, agent=agent)
    funding = platform_account(Account.Kind.FUNDING)
    reference = reference or f"grant:{uuid.uuid4().hex}"
    locked = _lock(target.pk, funding.pk)
    if (txn := _existing(reference)) is not None:
        return txn
    return _post(
        kind=Transaction.Kind.GRANT,
        reference=reference,
        subject="",
        memo=memo,
        locked=locked,
        legs=[
            Leg(funding.pk, -amount, Entry.Kind.GRANT),
            Leg(target.pk, amount, Entry.Kind.GRANT),
        ],
    )


@transaction.atomic
def hold_place(
    *,
    owner: Owner | None = None,
    agent: Agent | None = None,
    amount: int,
    reference: str,
    subject: str = "",
) -> Hold:
    """The payer's spendable account → their escrow. ``InsufficientCredits`` holds nothing."""
    if amount < 1:
        raise InvalidAmount("a hold must be at least 1 cent")
    payer, escrow = holder_accounts(owner=owner, agent=agent)
    locked = _lock(payer.pk, escrow.pk)
    if (existing := Hold.objects.filter(reference=reference).first()) is not None:
        return existing
    available = locked[payer.pk].balance
    # Checked inside the lock: a concurrent hold on the same pool waits above, then sees ours.
    if available < amount:
        raise InsufficientCredits(available=available, required=amount)
    _post(
        kind=Transaction.Kind.HOLD,
        reference=f"{reference}:hold",
        subject=subject,
        locked=locked,
        legs=[Leg(payer.pk, -amount, Entry.Kind.HOLD), Leg(escrow.pk, amount, Entry.Kind.HOLD)],
    )
    return Hold.objects.create(
        reference=reference, subject=subject, payer=payer, escrow=escrow, amount=amount
    )


def fee_for(price: int) -> int:
    return price * settings.PLATFORM_FEE_BPS // 10000


@transaction.atomic
def hold_capture(*, hold: Hold, price: int, payee: Agent) -> Hold:
    """Charge ``price`` out of an open hold: the payee gets it less the fee, the rest goes back.

    The escrow returns the whole hold to the payer, who is charged the price in the same
    transaction, so the payer's own entries read: hold, release, charge.
    """
    hold = Hold.objects.select_for_update().get(pk=hold.pk)
    if hold.status != Hold.Status.OPEN:
        if hold.status == Hold.Status.CAPTURED and hold.payee_id is not None:
            return hold  # a retried capture: the money already moved
        raise HoldNotOpen(f"hold {hold.reference} is {hold.status}")
    if not 0 <= price <= hold.amount:
        raise InvalidAmount(f"price {price} is outside 0..{hold.amount}")
    payee_account = spend_account(agent=payee)
    fees = platform_account(Account.Kind.FEES)
    fee = fee_for(price)
    locked = _lock(hold.payer_id, hold.escrow_id, payee_account.pk, fees.pk)
    _post(
        kind=Transaction.Kind.CAPTURE,
        reference=f"{hold.reference}:capture",
        subject=hold.subject,
        locked=locked,
        legs=[
            Leg(hold.escrow_id, -hold.amount, Entry.Kind.RELEASE),
            Leg(hold.payer_id, hold.amount, Entry.Kind.RELEASE),
            Leg(hold.payer_id, -price, Entry.Kind.CHARGE),
            Leg(payee_account.pk, price - fee, Entry.Kind.PAYOUT),
            Leg(fees.pk, fee, Entry.Kind.FEE),
        ],
    )
    hold.status = Hold.Status.CAPTURED
    hold.payee = payee_account
    hold.charged = price
    hold.fee = fee
    hold.settled_at = timezone.now()
    hold.save(update_fields=["status", "payee", "charged", "fee", "settled_at"])
    return hold


@transaction.atomic
def hold_release(*, hold: Hold) -> Hold:
    """Give an open hold back to the payer in full."""
    hold = Hold.objects.select_for_update().get(pk=hold.pk)
    if hold.status == Hold.Status.RELEASED:
        return hold
    if hold.status != Hold.Status.OPEN:
        raise HoldNotOpen(f"hold {hold.reference} is {hold.status}")
    locked = _lock(hold.payer_id, hold.escrow_id)
    _post(
        kind=Transaction.Kind.RELEASE,
        reference=f"{hold.reference}:release",
        subject=hold.subject,
        locked=locked,
        legs=[
            Leg(hold.escrow_id, -hold.amount, Entry.Kind.RELEASE),
            Leg(hold.payer_id, hold.amount, Entry.Kind.RELEASE),
        ],
    )
    hold.status = Hold.Status.RELEASED
    hold.settled_at = timezone.now()
    hold.save(update_fields=["status", "settled_at"])
    return hold


@transaction.atomic
def refund_issue(*, hold: Hold, amount: int, reference: str) -> Hold:
    """Give back ``amount`` of a captured charge, clawed back from payee and fees in proportion.

    Of a refund ``r`` out of a charge ``c`` with fee ``f``, ``floor(r × f / c)`` comes from the
    fees and the rest from the payee, whose earnings may go negative (it then owes the platform).
    Later partial refunds take the fee share of the running total, so a charge refunded in
    parts gives back exactly the fee and the payout.
    """
    hold = Hold.objects.select_for_update().get(pk=hold.pk)
    if _existing(reference) is not None:
        return hold  # a retried refund: the money already moved
    if hold.status != Hold.Status.CAPTURED:
        raise HoldNotOpen(f"hold {hold.reference} is {hold.status}, not captured")
    if amount < 1:
        raise InvalidAmount("a refund must be at least 1 cent")
    if amount > hold.refundable:
        raise RefundExceedsCharge(
            f"refund {amount} exceeds the {hold.refundable} left of charge {hold.charged}"
        )
    fees = platform_account(Account.Kind.FEES)
    # The fee share of the refunded total so far, less what earlier refunds took: one refund
    # takes floor(r × f / c), and refunds in parts add up to exactly the whole fee.
    from_fees = (hold.refunded + amount) * hold.fee // hold.charged - (
        hold.refunded * hold.fee // hold.charged
    )
    from_payee = amount - from_fees
    locked = _lock(hold.payer_id, hold.payee_id, fees.pk)
    _post(
        kind=Transaction.Kind.REFUND,
        reference=reference,
        subject=hold.subject,
        locked=locked,
        legs=[
            Leg(hold.payee_id, -from_payee, Entry.Kind.CLAWBACK),
            Leg(fees.pk, -from_fees, Entry.Kind.CLAWBACK),
            Leg(hold.payer_id, amount, Entry.Kind.REFUND),
        ],
    )
    hold.refunded += amount
    hold.save(update_fields=["refunded"])
    return hold
