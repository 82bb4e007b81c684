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
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from city.api.errors import ApiError, Conflict, Invalid, PaymentRequired
from city.api.prepared import Insert, Prepared, Update
from city.identity.models import Agent, Owner
from credits.models import Account, Entry, Hold, Transaction


class CreditsError(ApiError):
    """Base of the ledger's domain errors; each also derives from its contract type."""


class InsufficientCredits(CreditsError, PaymentRequired):
    code = "insufficient_credits"

    def __init__(self, *, available: int, required: int):
        self.available = available
        self.required = required
        super().__init__(f"Insufficient credits: {available} available, {required} required.")


class InvalidAmount(CreditsError, Invalid):
    code = "invalid_amount"

    def __init__(self, message: str):
        super().__init__(message, param="amount")


class HoldNotOpen(CreditsError, Conflict):
    code = "hold_not_open"


class RefundExceedsCharge(CreditsError, Invalid):
    code = "refund_exceeds_charge"

    def __init__(self, *, amount: int, refundable: int, charged: int):
        self.refundable = refundable
        super().__init__(
            f"A refund of {amount} exceeds the {refundable} still refundable of the charge "
            f"{charged}.",
            param="amount",
        )


@dataclass(frozen=True)
class Leg:
    account_id: int
    amount: int
    kind: str


# Accounts


def _holder(owner: Owner | None, agent: Agent | None) -> tuple[Q, str]:
    """Who holds the accounts, and the kind of the one they spend from."""
    if agent is not None:
        return Q(agent=agent), Account.Kind.EARNINGS
    return Q(owner=owner), Account.Kind.POOL


def accounts_open(*, owner: Owner | None = None, agent: Agent | None = None) -> None:
    """Open a holder's spendable account and escrow (idempotent); movements open them too."""
    who, spend_kind = _holder(owner, agent)
    holder = {"agent": agent} if agent is not None else {"owner": owner}
    existing = set(Account.objects.filter(who).values_list("kind", flat=True))
    for kind in (spend_kind, Account.Kind.ESCROW):
        if kind not in existing:
            Account.objects.get_or_create(**holder, kind=kind)


def platform_account(kind: str, shard: int = 0) -> Account:
    account, _ = Account.objects.get_or_create(kind=kind, shard=shard, owner=None, agent=None)
    return account


def fee_accounts_open() -> None:
    """Open every fee account at once (one statement), the first time a fee needs one."""
    Account.objects.bulk_create(
        [Account(kind=Account.Kind.FEES, shard=n) for n in range(settings.FEE_ACCOUNT_SHARDS)],
        ignore_conflicts=True,
    )


def fee_shard(hold: Hold) -> int:
    """Which of the platform's fee accounts a hold's capture pays its fee into: spread by hold,
    so that captures at once lock different rows."""
    return hold.pk % settings.FEE_ACCOUNT_SHARDS


# The posting primitive
#
# A movement's writes are the ledger's hot path (every submit, capture and refund): their SQL is
# built once (city.api.prepared.Insert, _balances_set) rather than compiled by the ORM each time.

_insert_transaction = Insert(Transaction)
_insert_entry = Insert(Entry)
_insert_hold = Insert(Hold)
_balances_sql: dict[int, str] = {}


def _balances_set(balances: dict[int, int]) -> None:
    """Set each account's cached balance (by primary key) in one UPDATE."""
    sql = _balances_sql.get(len(balances))
    if sql is None:
        qn = connection.ops.quote_name
        table, pk, balance = Account._meta.db_table, Account._meta.pk.column, "balance"
        cases = " ".join(f"WHEN {qn(pk)} = %s THEN %s" for _ in balances)
        keys = ", ".join(["%s"] * len(balances))
        sql = _balances_sql.setdefault(
            len(balances),
            f"UPDATE {qn(table)} SET {qn(balance)} = CASE {cases} END WHERE {qn(pk)} IN ({keys})",
        )
    params = [value for pair in balances.items() for value in pair] + list(balances)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _lock(where: Q | Prepared, *, expect: int, open_missing, **params: str | int) -> list[Account]:
    """Lock the accounts matching ``where`` (or a compiled query's, with ``params``) in one
    query, opening any missing ones first.

    Primary-key order: every movement takes its locks in the same order, so two movements
    over the same accounts cannot deadlock. Balances are read only from these locked rows.
    """
    for _ in range(2):
        if isinstance(where, Prepared):
            locked = where.all(**params)
        else:
            locked = list(Account.objects.select_for_update().filter(where).order_by("pk"))
        if len(locked) >= expect:
            return locked
        open_missing()
    raise RuntimeError(f"accounts matching {where} could not be opened")


# A holder's spendable account and escrow, locked, by the kind it spends from (an owner's pool,
# an agent's earnings): every hold (every submit) starts with it.
_HOLDER_ACCOUNTS = {
    kind: Prepared(
        lambda holder_id, holder=holder, kind=kind: (
            Account.objects.select_for_update()
            .filter(**{f"{holder}_id": holder_id}, kind__in=[kind, Account.Kind.ESCROW])
            .order_by("pk")
        )
    )
    for holder, kind in (("owner", Account.Kind.POOL), ("agent", Account.Kind.EARNINGS))
}


# A capture's four accounts (payer, escrow, payee, a fee shard), locked: every quality check.
# One compiled query per fee shard (a small integer cannot carry Prepared's marker).
_CAPTURE_ACCOUNTS: dict[int, Prepared] = {}


def _capture_accounts(shard: int) -> Prepared:
    if shard not in _CAPTURE_ACCOUNTS:
        _CAPTURE_ACCOUNTS[shard] = Prepared(
            lambda payer_id, escrow_id, payee_id: (
                Account.objects.select_for_update()
                .filter(
                    Q(pk__in=[payer_id, escrow_id])
                    | Q(agent_id=payee_id, kind=Account.Kind.EARNINGS)
                    | Q(kind=Account.Kind.FEES, shard=shard, owner=None, agent=None)
                )
                .order_by("pk")
            )
        )
    return _CAPTURE_ACCOUNTS[shard]


_HOLD_LOCKED = Prepared(lambda hold_id: Hold.objects.select_for_update().filter(pk=hold_id))
# A capture's change to its hold, its SQL built once.
_update_captured = Update(
    Hold, lambda: ["status", "payee", "fee_account", "charged", "fee", "settled_at"]
)


def _hold_locked(pk: int) -> Hold:
    hold = _HOLD_LOCKED.first(hold_id=pk)
    if hold is None:
        raise Hold.DoesNotExist(f"No hold {pk}.")
    return hold


def _one(locked: list[Account], **match) -> Account:
    return next(a for a in locked if all(getattr(a, k) == v for k, v in match.items()))


def _post(
    *,
    kind: str,
    reference: str,
    subject: str,
    legs: list[Leg],
    locked: list[Account],
    memo: str = "",
) -> Transaction:
    """Write one balanced transaction over accounts the caller has already locked."""
    legs = [leg for leg in legs if leg.amount != 0]
    if sum(leg.amount for leg in legs) != 0:
        # A bug in this module, never an outcome of input: the database refuses it too.
        raise RuntimeError(f"unbalanced transaction {reference}")
    by_id = {account.pk: account for account in locked}
    txn = Transaction(kind=kind, reference=reference, subject=subject, memo=memo)
    _insert_transaction(txn)
    entries = []
    for leg in legs:
        account = by_id[leg.account_id]
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
    _insert_entry(*entries)
    touched = {leg.account_id: by_id[leg.account_id].balance for leg in legs}
    _balances_set(touched)
    return txn


# Movements
#
# ``savepoint=False``: a movement inside a caller's transaction (a submit, a quality check) is
# all or nothing with it, so a savepoint would only cost two statements.


@transaction.atomic(savepoint=False)
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
        raise InvalidAmount("A grant must be at least 1 cent.")
    who, spend_kind = _holder(owner, agent)
    reference = reference or f"grant:{uuid.uuid4().hex}"
    locked = _lock(
        (who & Q(kind=spend_kind)) | Q(kind=Account.Kind.FUNDING),
        expect=2,
        open_missing=lambda: (
            accounts_open(owner=owner, agent=agent),
            platform_account(Account.Kind.FUNDING),
        ),
    )
    if (txn := Transaction.objects.filter(reference=reference).first()) is not None:
        return txn  # a retried grant: the money already moved
    funding = _one(locked, kind=Account.Kind.FUNDING)
    target = _one(locked, kind=spend_kind)
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


@transaction.atomic(savepoint=False)
def hold_place(
    *,
    owner: Owner | None = None,
    agent: Agent | None = None,
    amount: int,
    reference: str,
    subject: str = "",
) -> Hold:
    """The payer's spendable account → their escrow. ``InsufficientCredits`` holds nothing.

    ``reference`` must be new (a task's id is): a second hold under it is an IntegrityError.
    """
    if amount < 1:
        raise InvalidAmount("A hold must be at least 1 cent.")
    _, spend_kind = _holder(owner, agent)
    locked = _lock(
        _HOLDER_ACCOUNTS[spend_kind],
        holder_id=(agent or owner).pk,
        expect=2,
        open_missing=lambda: accounts_open(owner=owner, agent=agent),
    )
    payer = _one(locked, kind=spend_kind)
    escrow = _one(locked, kind=Account.Kind.ESCROW)
    # Checked inside the lock: a concurrent hold on the same pool waits above, then sees ours.
    if payer.balance < amount:
        raise InsufficientCredits(available=payer.balance, required=amount)
    _post(
        kind=Transaction.Kind.HOLD,
        reference=f"{reference}:hold",
        subject=subject,
        locked=locked,
        legs=[Leg(payer.pk, -amount, Entry.Kind.HOLD), Leg(escrow.pk, amount, Entry.Kind.HOLD)],
    )
    hold = Hold(reference=reference, subject=subject, payer=payer, escrow=escrow, amount=amount)
    _insert_hold(hold)
    return hold


def fee_for(price: int) -> int:
    return price * settings.PLATFORM_FEE_BPS // 10000


@transaction.atomic(savepoint=False)
def hold_capture(*, hold: Hold, price: int, payee_id: str) -> Hold:
    """Charge ``price`` out of an open hold: the payee (an agent, by id) gets it less the fee,
    the rest goes back. Only ``hold.pk`` is read: the hold is re-read under lock here.

    The escrow returns the whole hold to the payer, who is charged the price in the same
    transaction, so the payer's own entries read: hold, release, charge.
    """
    hold = _hold_locked(hold.pk)
    if hold.status != Hold.Status.OPEN:
        if hold.status == Hold.Status.CAPTURED and hold.payee_id is not None:
            return hold  # a retried capture: the money already moved
        raise HoldNotOpen(f"Hold {hold.reference} is {hold.status}, not open.")
    if not 0 <= price <= hold.amount:
        raise InvalidAmount(f"Price {price} is outside 0..{hold.amount}.")
    locked = _lock(
        _capture_accounts(fee_shard(hold)),
        payer_id=hold.payer_id,
        escrow_id=hold.escrow_id,
        payee_id=payee_id,
        expect=4,
        open_missing=lambda: (
            accounts_open(agent=Agent(pk=payee_id)),
            fee_accounts_open(),
        ),
    )
    payee_account = _one(locked, agent_id=payee_id, kind=Account.Kind.EARNINGS)
    fees = _one(locked, kind=Account.Kind.FEES)
    fee = fee_for(price)
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
    hold.fee_account = fees
    hold.charged = price
    hold.fee = fee
    hold.settled_at = timezone.now()
    _update_captured(hold)
    return hold


@transaction.atomic(savepoint=False)
def hold_release(*, hold: Hold) -> Hold:
    """Give an open hold back to the payer in full."""
    hold = _hold_locked(hold.pk)
    if hold.status == Hold.Status.RELEASED:
        return hold
    if hold.status != Hold.Status.OPEN:
        raise HoldNotOpen(f"Hold {hold.reference} is {hold.status}, not open.")
    locked = _lock(Q(pk__in=[hold.payer_id, hold.escrow_id]), expect=2, open_missing=_never)
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


@transaction.atomic(savepoint=False)
def refund_issue(*, hold: Hold, amount: int, reference: str) -> Hold:
    """Give back ``amount`` of a captured charge, clawed back from payee and fees in proportion.

    Of a refund ``r`` out of a charge ``c`` with fee ``f``, ``floor(r × f / c)`` comes from the
    fees and the rest from the payee, whose earnings may go negative (it then owes the platform).
    Later partial refunds take the fee share of the running total, so a charge refunded in
    parts gives back exactly the fee and the payout.
    """
    hold = _hold_locked(hold.pk)
    if Transaction.objects.filter(reference=reference).exists():
        return hold  # a retried refund: the money already moved
    if hold.status != Hold.Status.CAPTURED:
        raise HoldNotOpen(f"Hold {hold.reference} is {hold.status}, not captured.")
    if amount < 1:
        raise InvalidAmount("A refund must be at least 1 cent.")
    if amount > hold.refundable:
        raise RefundExceedsCharge(amount=amount, refundable=hold.refundable, charged=hold.charged)
    # The fee share of the refunded total so far, less what earlier refunds took: one refund
    # takes floor(r × f / c), and refunds in parts add up to exactly the whole fee.
    from_fees = (hold.refunded + amount) * hold.fee // hold.charged - (
        hold.refunded * hold.fee // hold.charged
    )
    from_payee = amount - from_fees
    # The fee comes back out of the account the capture paid it into (before fee accounts were
    # split, the one fee account, shard 0).
    fee_account = (
        Q(pk=hold.fee_account_id)
        if hold.fee_account_id is not None
        else Q(kind=Account.Kind.FEES, shard=0, owner=None, agent=None)
    )
    locked = _lock(
        Q(pk__in=[hold.payer_id, hold.payee_id]) | fee_account,
        expect=3,
        open_missing=fee_accounts_open,
    )
    fees = _one(locked, kind=Account.Kind.FEES)
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


def _never() -> None:
    """The accounts of a placed hold exist already."""
