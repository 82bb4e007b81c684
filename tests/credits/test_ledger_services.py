"""credits.services, one movement at a time: the entries each writes, to the cent."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import IntegrityError, transaction

from credits import services
from credits.models import Account, Entry, Hold, Transaction
from credits.selectors import balance_get


def pool(person) -> Account:
    return Account.objects.get(owner=person.owner, kind=Account.Kind.POOL)


def escrow_of(person) -> Account:
    return Account.objects.get(owner=person.owner, kind=Account.Kind.ESCROW)


def earnings(bot) -> Account:
    return Account.objects.get(agent=bot.agent, kind=Account.Kind.EARNINGS)


@pytest.fixture(autouse=True)
def _one_fee_account(settings):
    """The arithmetic of movements, over one fee account (test_fee_shards.py splits it)."""
    settings.FEE_ACCOUNT_SHARDS = 1


def platform(kind: str) -> Account:
    return Account.objects.get(kind=kind, owner=None, agent=None)


def balance_of(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance


def legs(txn: Transaction) -> Counter:
    """A transaction's entries as a multiset of (kind, amount, account id)."""
    return Counter((e.kind, e.amount, e.account_id) for e in txn.entries.all())


def expected(*rows: tuple[str, int, Account]) -> Counter:
    return Counter((kind, amount, account.pk) for kind, amount, account in rows)


def assert_balanced(txn: Transaction) -> None:
    amounts = list(txn.entries.values_list("amount", flat=True))
    assert len(amounts) >= 2
    assert 0 not in amounts
    assert sum(amounts) == 0


def hold_for(person, amount: int = 5000, reference: str = "task:t1") -> Hold:
    return services.hold_place(owner=person.owner, amount=amount, reference=reference, subject="t1")


def captured(person, bot, *, amount: int = 5000, price: int = 2500, reference: str = "task:t1"):
    hold = hold_for(person, amount, reference)
    return services.hold_capture(hold=hold, price=price, payee_id=bot.id)


# grant_issue


def test_it_grants_from_funding_to_the_owners_pool(bob):
    funding_before = balance_of(services.platform_account(Account.Kind.FUNDING))

    txn = services.grant_issue(owner=bob.owner, amount=700, memo="welcome")

    assert txn.kind == Transaction.Kind.GRANT
    assert txn.memo == "welcome"
    funding = platform(Account.Kind.FUNDING)
    assert legs(txn) == expected(
        (Entry.Kind.GRANT, -700, funding), (Entry.Kind.GRANT, 700, pool(bob))
    )
    assert_balanced(txn)
    assert balance_get(owner=bob.owner).available == 700
    assert balance_get(owner=bob.owner).held == 0
    assert balance_of(funding) == funding_before - 700


def test_it_records_the_balance_after_each_grant(bob):
    first = services.grant_issue(owner=bob.owner, amount=300)
    second = services.grant_issue(owner=bob.owner, amount=500)

    assert first.entries.get(account=pool(bob)).balance_after == 300
    assert second.entries.get(account=pool(bob)).balance_after == 800
    funding = platform(Account.Kind.FUNDING)
    assert second.entries.get(account=funding).balance_after == balance_of(funding)


def test_it_grants_to_an_agents_earnings(rex):
    txn = services.grant_issue(agent=rex.agent, amount=1234)

    assert legs(txn) == expected(
        (Entry.Kind.GRANT, -1234, platform(Account.Kind.FUNDING)),
        (Entry.Kind.GRANT, 1234, earnings(rex)),
    )
    assert balance_get(agent=rex.agent).available == 1234


@pytest.mark.parametrize("amount", [0, -1, -500])
def test_it_refuses_a_grant_below_one_cent(bob, amount):
    before = Transaction.objects.count()

    with pytest.raises(services.InvalidAmount):
        services.grant_issue(owner=bob.owner, amount=amount)

    assert Transaction.objects.count() == before
    assert balance_get(owner=bob.owner).available == 0


def test_it_grants_once_per_reference(bob):
    first = services.grant_issue(owner=bob.owner, amount=900, reference="grant:once")
    again = services.grant_issue(owner=bob.owner, amount=900, reference="grant:once")

    assert again.pk == first.pk
    assert Transaction.objects.filter(reference="grant:once").count() == 1
    assert balance_get(owner=bob.owner).available == 900


# hold_place


def test_it_moves_a_hold_from_available_to_held(alice):
    hold = hold_for(alice, 5000)

    balance = balance_get(owner=alice.owner)
    assert (balance.available, balance.held, balance.total) == (95_000, 5000, 100_000)
    assert hold.status == Hold.Status.OPEN
    assert (hold.amount, hold.reference, hold.subject) == (5000, "task:t1", "t1")
    assert (hold.payer_id, hold.escrow_id) == (pool(alice).pk, escrow_of(alice).pk)
    txn = Transaction.objects.get(reference="task:t1:hold")
    assert (txn.kind, txn.subject) == (Transaction.Kind.HOLD, "t1")
    assert legs(txn) == expected(
        (Entry.Kind.HOLD, -5000, pool(alice)), (Entry.Kind.HOLD, 5000, escrow_of(alice))
    )
    assert txn.entries.get(account=pool(alice)).balance_after == 95_000
    assert txn.entries.get(account=escrow_of(alice)).balance_after == 5000
    assert set(txn.entries.values_list("subject", flat=True)) == {"t1"}


def test_it_holds_the_whole_available_balance(bob):
    services.grant_issue(owner=bob.owner, amount=100)

    hold_for(bob, 100)

    balance = balance_get(owner=bob.owner)
    assert (balance.available, balance.held) == (0, 100)


def test_it_refuses_a_hold_above_the_available_balance_and_posts_nothing(bob):
    services.grant_issue(owner=bob.owner, amount=100)
    transactions = Transaction.objects.count()

    with pytest.raises(services.InsufficientCredits) as raised:
        hold_for(bob, 101)

    assert (raised.value.available, raised.value.required) == (100, 101)
    assert Transaction.objects.count() == transactions
    assert not Hold.objects.exists()
    balance = balance_get(owner=bob.owner)
    assert (balance.available, balance.held) == (100, 0)


def test_it_counts_only_available_credits_not_what_is_already_held(alice):
    hold_for(alice, 60_000, reference="task:a")

    with pytest.raises(services.InsufficientCredits) as raised:
        hold_for(alice, 40_001, reference="task:b")

    assert raised.value.available == 40_000
    assert Hold.objects.count() == 1


def test_it_refuses_a_second_hold_under_the_same_reference(alice):
    first = hold_for(alice, 5000)

    # A reference names one new hold (a task's id): reusing it is a bug, refused whole.
    with pytest.raises(IntegrityError), transaction.atomic():
        hold_for(alice, 5000)

    assert list(Hold.objects.values_list("pk", flat=True)) == [first.pk]
    assert Transaction.objects.filter(kind=Transaction.Kind.HOLD).count() == 1
    balance = balance_get(owner=alice.owner)
    assert (balance.available, balance.held) == (95_000, 5000)


@pytest.mark.parametrize("amount", [0, -5])
def test_it_refuses_a_hold_below_one_cent(alice, amount):
    with pytest.raises(services.InvalidAmount):
        hold_for(alice, amount)

    assert not Hold.objects.exists()
    assert balance_get(owner=alice.owner).available == 100_000


def test_it_holds_an_agents_earnings_in_its_own_escrow(rex):
    services.grant_issue(agent=rex.agent, amount=3000)

    hold = services.hold_place(agent=rex.agent, amount=1000, reference="task:sub")

    agent_escrow = Account.objects.get(agent=rex.agent, kind=Account.Kind.ESCROW)
    assert (hold.payer_id, hold.escrow_id) == (earnings(rex).pk, agent_escrow.pk)
    balance = balance_get(agent=rex.agent)
    assert (balance.available, balance.held) == (2000, 1000)


# hold_capture


def test_it_captures_with_release_charge_payout_and_fee_entries(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2500)

    txn = Transaction.objects.get(reference="task:t1:capture")
    assert (txn.kind, txn.subject) == (Transaction.Kind.CAPTURE, "t1")
    assert legs(txn) == expected(
        (Entry.Kind.RELEASE, -5000, escrow_of(alice)),
        (Entry.Kind.RELEASE, 5000, pool(alice)),
        (Entry.Kind.CHARGE, -2500, pool(alice)),
        (Entry.Kind.PAYOUT, 2250, earnings(rex)),
        (Entry.Kind.FEE, 250, platform(Account.Kind.FEES)),
    )
    assert_balanced(txn)
    payer_entries = txn.entries.filter(account=pool(alice)).order_by("id")
    assert [(e.kind, e.balance_after) for e in payer_entries] == [
        (Entry.Kind.RELEASE, 100_000),
        (Entry.Kind.CHARGE, 97_500),
    ]
    assert txn.entries.get(account=earnings(rex)).balance_after == 2250
    assert (hold.status, hold.charged, hold.fee, hold.refunded) == (
        Hold.Status.CAPTURED,
        2500,
        250,
        0,
    )
    assert hold.payee_id == earnings(rex).pk
    assert hold.settled_at is not None


def test_it_gives_the_payer_back_what_the_price_leaves_of_the_hold(alice, rex):
    captured(alice, rex, amount=5000, price=2500)

    balance = balance_get(owner=alice.owner)
    assert (balance.available, balance.held) == (97_500, 0)
    assert balance_get(agent=rex.agent).available == 2250
    assert balance_of(platform(Account.Kind.FEES)) == 250
    assert list(
        Entry.objects.filter(account=pool(alice)).order_by("id").values_list("kind", flat=True)
    ) == ["grant", "hold", "release", "charge"]


@pytest.mark.parametrize(
    ("bps", "price", "fee"),
    [
        (1000, 2500, 250),
        (1000, 2599, 259),  # 259.9 rounds down
        (1000, 9, 0),  # 0.9 rounds down to no fee at all
        (250, 333, 8),  # 8.325
        (1, 9999, 0),  # 0.9999
        (1, 10_000, 1),
        (0, 2500, 0),
        (10_000, 2500, 2500),  # the platform keeps everything
        (3333, 5000, 1666),  # 1666.5
    ],
)
def test_it_takes_a_fee_of_floor_price_times_bps(settings, alice, rex, bps, price, fee):
    settings.PLATFORM_FEE_BPS = bps

    hold = captured(alice, rex, amount=10_000, price=price)

    assert (hold.charged, hold.fee) == (price, fee)
    rows = [
        (Entry.Kind.RELEASE, -10_000, escrow_of(alice)),
        (Entry.Kind.RELEASE, 10_000, pool(alice)),
        (Entry.Kind.CHARGE, -price, pool(alice)),
    ]
    # A leg of zero is not written: the entry_amount_nonzero constraint forbids it.
    if price - fee:
        rows.append((Entry.Kind.PAYOUT, price - fee, earnings(rex)))
    if fee:
        rows.append((Entry.Kind.FEE, fee, platform(Account.Kind.FEES)))
    txn = Transaction.objects.get(reference="task:t1:capture")
    assert legs(txn) == expected(*rows)
    assert balance_get(owner=alice.owner).available == 100_000 - price
    assert balance_get(agent=rex.agent).available == price - fee
    assert Account.objects.filter(kind=Account.Kind.FEES).get().balance == fee


def test_it_captures_the_whole_hold_when_the_price_equals_it(alice, rex):
    hold = captured(alice, rex, amount=2500, price=2500)

    assert hold.charged == 2500
    balance = balance_get(owner=alice.owner)
    assert (balance.available, balance.held) == (97_500, 0)


def test_it_captures_nothing_twice(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2500)
    entries = Entry.objects.count()

    again = services.hold_capture(hold=hold, price=2500, payee_id=rex.id)

    assert again.pk == hold.pk
    assert (again.status, again.charged, again.fee) == (Hold.Status.CAPTURED, 2500, 250)
    assert Entry.objects.count() == entries
    assert Transaction.objects.filter(kind=Transaction.Kind.CAPTURE).count() == 1
    assert balance_get(owner=alice.owner).available == 97_500
    assert balance_get(agent=rex.agent).available == 2250


def test_it_refuses_to_capture_a_released_hold(alice, rex):
    hold = services.hold_release(hold=hold_for(alice, 5000))

    with pytest.raises(services.HoldNotOpen):
        services.hold_capture(hold=hold, price=2500, payee_id=rex.id)

    assert Hold.objects.get(pk=hold.pk).status == Hold.Status.RELEASED
    assert not Transaction.objects.filter(kind=Transaction.Kind.CAPTURE).exists()
    assert balance_get(owner=alice.owner).available == 100_000
    assert balance_get(agent=rex.agent).available == 0


@pytest.mark.parametrize("price", [5001, 1_000_000, -1])
def test_it_refuses_a_price_outside_the_hold(alice, rex, price):
    hold = hold_for(alice, 5000)

    with pytest.raises(services.InvalidAmount):
        services.hold_capture(hold=hold, price=price, payee_id=rex.id)

    assert Hold.objects.get(pk=hold.pk).status == Hold.Status.OPEN
    assert not Transaction.objects.filter(kind=Transaction.Kind.CAPTURE).exists()
    balance = balance_get(owner=alice.owner)
    assert (balance.available, balance.held) == (95_000, 5000)


# hold_release


def test_it_releases_the_whole_hold_to_the_payer(alice):
    hold = services.hold_release(hold=hold_for(alice, 5000))

    assert hold.status == Hold.Status.RELEASED
    assert hold.settled_at is not None
    txn = Transaction.objects.get(reference="task:t1:release")
    assert (txn.kind, txn.subject) == (Transaction.Kind.RELEASE, "t1")
    assert legs(txn) == expected(
        (Entry.Kind.RELEASE, -5000, escrow_of(alice)), (Entry.Kind.RELEASE, 5000, pool(alice))
    )
    assert txn.entries.get(account=pool(alice)).balance_after == 100_000
    assert txn.entries.get(account=escrow_of(alice)).balance_after == 0
    balance = balance_get(owner=alice.owner)
    assert (balance.available, balance.held) == (100_000, 0)


def test_it_releases_a_hold_once(alice):
    hold = services.hold_release(hold=hold_for(alice, 5000))

    again = services.hold_release(hold=hold)

    assert again.status == Hold.Status.RELEASED
    assert Transaction.objects.filter(kind=Transaction.Kind.RELEASE).count() == 1
    assert balance_get(owner=alice.owner).available == 100_000


def test_it_refuses_to_release_a_captured_hold(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2500)

    with pytest.raises(services.HoldNotOpen):
        services.hold_release(hold=hold)

    assert Hold.objects.get(pk=hold.pk).status == Hold.Status.CAPTURED
    assert not Transaction.objects.filter(kind=Transaction.Kind.RELEASE).exists()
    assert balance_get(owner=alice.owner).available == 97_500


# refund_issue


def test_it_refunds_a_whole_charge_from_the_payee_and_the_fees(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2500)

    hold = services.refund_issue(hold=hold, amount=2500, reference="task:t1:refund")

    txn = Transaction.objects.get(reference="task:t1:refund")
    assert (txn.kind, txn.subject) == (Transaction.Kind.REFUND, "t1")
    assert legs(txn) == expected(
        (Entry.Kind.CLAWBACK, -2250, earnings(rex)),
        (Entry.Kind.CLAWBACK, -250, platform(Account.Kind.FEES)),
        (Entry.Kind.REFUND, 2500, pool(alice)),
    )
    assert_balanced(txn)
    assert txn.entries.get(account=pool(alice)).balance_after == 100_000
    assert hold.refunded == 2500
    assert hold.refundable == 0
    assert balance_get(owner=alice.owner).available == 100_000
    assert balance_get(agent=rex.agent).available == 0
    assert balance_of(platform(Account.Kind.FEES)) == 0


@pytest.mark.parametrize(
    ("price", "refund", "from_fees"),
    [
        (2500, 1000, 100),
        (2599, 1000, 99),  # 1000 × 259 / 2599 = 99.65
        (2599, 1, 0),  # 0.0997
        (2599, 2599, 259),
        (10, 7, 0),  # fee 1: 7 × 1 / 10 = 0.7
    ],
)
def test_it_claws_back_floor_r_times_fee_over_charge_from_the_fees(
    alice, rex, price, refund, from_fees
):
    hold = captured(alice, rex, amount=5000, price=price)
    fee = price // 10

    services.refund_issue(hold=hold, amount=refund, reference="refund:1")

    rows = [(Entry.Kind.REFUND, refund, pool(alice))]
    if refund - from_fees:
        rows.append((Entry.Kind.CLAWBACK, -(refund - from_fees), earnings(rex)))
    if from_fees:
        rows.append((Entry.Kind.CLAWBACK, -from_fees, platform(Account.Kind.FEES)))
    assert legs(Transaction.objects.get(reference="refund:1")) == expected(*rows)
    assert balance_of(platform(Account.Kind.FEES)) == fee - from_fees
    assert balance_get(agent=rex.agent).available == price - fee - (refund - from_fees)
    assert balance_get(owner=alice.owner).available == 100_000 - price + refund


def test_it_takes_a_refund_wholly_from_the_payee_when_there_was_no_fee(settings, alice, rex):
    settings.PLATFORM_FEE_BPS = 0
    hold = captured(alice, rex, amount=5000, price=2500)

    services.refund_issue(hold=hold, amount=1000, reference="refund:1")

    assert legs(Transaction.objects.get(reference="refund:1")) == expected(
        (Entry.Kind.CLAWBACK, -1000, earnings(rex)), (Entry.Kind.REFUND, 1000, pool(alice))
    )


def test_it_refunds_in_parts_up_to_the_charge_and_no_further(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2599)  # fee 259, payout 2340

    hold = services.refund_issue(hold=hold, amount=1000, reference="refund:1")
    hold = services.refund_issue(hold=hold, amount=1000, reference="refund:2")
    assert hold.refunded == 2000

    with pytest.raises(services.RefundExceedsCharge):
        services.refund_issue(hold=hold, amount=600, reference="refund:3")
    assert Hold.objects.get(pk=hold.pk).refunded == 2000
    assert not Transaction.objects.filter(reference="refund:3").exists()

    hold = services.refund_issue(hold=hold, amount=599, reference="refund:4")
    assert (hold.refunded, hold.refundable) == (2599, 0)
    with pytest.raises(services.RefundExceedsCharge):
        services.refund_issue(hold=hold, amount=1, reference="refund:5")

    # Each part takes the fee share of the running total, floor(R × 259 / 2599) for R = 1000,
    # 2000, 2599 less what went before: 99, 100, then 60, so the whole fee and payout come back.
    fee_entries = Entry.objects.filter(account=platform(Account.Kind.FEES), kind="clawback")
    assert sorted(fee_entries.values_list("amount", flat=True)) == [-100, -99, -60]
    assert balance_of(platform(Account.Kind.FEES)) == 0
    assert balance_get(agent=rex.agent).available == 0
    assert balance_get(owner=alice.owner).available == 100_000
    refunded = Entry.objects.filter(account=pool(alice), kind=Entry.Kind.REFUND)
    assert sum(refunded.values_list("amount", flat=True)) == 2599


def test_it_refuses_a_first_refund_above_the_charge(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2500)

    with pytest.raises(services.RefundExceedsCharge):
        services.refund_issue(hold=hold, amount=2501, reference="refund:1")

    assert Hold.objects.get(pk=hold.pk).refunded == 0
    assert balance_get(owner=alice.owner).available == 97_500


def test_it_refunds_once_per_reference(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2500)

    services.refund_issue(hold=hold, amount=1000, reference="refund:1")
    again = services.refund_issue(hold=hold, amount=1000, reference="refund:1")

    assert again.refunded == 1000
    assert Hold.objects.get(pk=hold.pk).refunded == 1000
    assert Transaction.objects.filter(kind=Transaction.Kind.REFUND).count() == 1
    assert balance_get(owner=alice.owner).available == 98_500


def test_it_lets_a_clawback_take_the_payees_earnings_below_zero(alice, rex):
    hold = captured(alice, rex, amount=5000, price=2500)
    # rex spends its payout on a sub-hire, so nothing is left to claw back from.
    services.hold_place(agent=rex.agent, amount=2250, reference="task:sub")
    assert balance_get(agent=rex.agent).available == 0

    services.refund_issue(hold=hold, amount=2500, reference="refund:1")

    assert balance_get(agent=rex.agent).available == -2250
    assert balance_get(agent=rex.agent).held == 2250
    entry = Entry.objects.get(account=earnings(rex), kind=Entry.Kind.CLAWBACK)
    assert (entry.amount, entry.balance_after) == (-2250, -2250)
    assert balance_get(owner=alice.owner).available == 100_000


@pytest.mark.parametrize("amount", [0, -1])
def test_it_refuses_a_refund_below_one_cent(alice, rex, amount):
    hold = captured(alice, rex, amount=5000, price=2500)

    with pytest.raises(services.InvalidAmount):
        services.refund_issue(hold=hold, amount=amount, reference="refund:1")

    assert not Transaction.objects.filter(kind=Transaction.Kind.REFUND).exists()


@pytest.mark.parametrize("settle", ["open", "released"])
def test_it_refuses_to_refund_a_hold_that_was_not_captured(alice, settle):
    hold = hold_for(alice, 5000)
    if settle == "released":
        hold = services.hold_release(hold=hold)

    with pytest.raises(services.HoldNotOpen):
        services.refund_issue(hold=hold, amount=100, reference="refund:1")

    assert not Transaction.objects.filter(kind=Transaction.Kind.REFUND).exists()
    assert balance_get(owner=alice.owner).total == 100_000
