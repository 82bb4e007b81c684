"""The database itself refuses what the ledger must never do, whatever the code above it does."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from credits import services
from credits.models import Account, Entry, Transaction


def pool(person) -> Account:
    return Account.objects.get(owner=person.owner, kind=Account.Kind.POOL)


def first_entry(person) -> Entry:
    return Entry.objects.filter(account=pool(person)).order_by("id").first()


# Entries and transactions are append-only


def test_it_refuses_to_update_an_entry(alice):
    entry = first_entry(alice)

    # IntegrityError (SQLite's RAISE(ABORT)) and InternalError (PostgreSQL's RAISE EXCEPTION)
    # are both DatabaseErrors.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Entry.objects.filter(pk=entry.pk).update(amount=entry.amount + 1)

    assert Entry.objects.get(pk=entry.pk).amount == 100_000


def test_it_refuses_to_update_an_entry_through_save(alice):
    entry = first_entry(alice)
    entry.kind = Entry.Kind.REFUND

    with pytest.raises(DatabaseError), transaction.atomic():
        entry.save()

    assert Entry.objects.get(pk=entry.pk).kind == Entry.Kind.GRANT


def test_it_refuses_to_update_a_transaction(alice):
    txn = first_entry(alice).transaction

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Transaction.objects.filter(pk=txn.pk).update(reference="rewritten")

    assert Transaction.objects.get(pk=txn.pk).reference == txn.reference


def test_it_refuses_to_delete_an_entry(postgres, alice):
    entry = first_entry(alice)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Entry.objects.filter(pk=entry.pk).delete()

    assert Entry.objects.filter(pk=entry.pk).exists()


def test_it_refuses_to_delete_a_transaction(postgres, alice):
    txn = first_entry(alice).transaction

    # Entry's PROTECT foreign key would stop Django first; plain SQL reaches the database.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM credits_transaction WHERE id = %s", [txn.pk])

    assert Transaction.objects.filter(pk=txn.pk).exists()


# Every transaction balances at commit (a deferred trigger on PostgreSQL)


def test_it_refuses_to_commit_a_transaction_whose_entries_do_not_sum_to_zero(postgres, alice):
    account = pool(alice)

    with pytest.raises(DatabaseError, match="does not balance"):
        with transaction.atomic():
            txn = Transaction.objects.create(kind=Transaction.Kind.GRANT, reference="lopsided")
            Entry.objects.create(
                transaction=txn, account=account, amount=5, kind="grant", balance_after=100_005
            )

    assert not Transaction.objects.filter(reference="lopsided").exists()
    assert Entry.objects.filter(account=account).count() == 1


def test_it_refuses_two_entries_that_leave_a_cent_over(postgres, alice):
    funding = services.platform_account(Account.Kind.FUNDING)

    with pytest.raises(DatabaseError, match="does not balance"):
        with transaction.atomic():
            txn = Transaction.objects.create(kind=Transaction.Kind.GRANT, reference="a cent over")
            Entry.objects.create(
                transaction=txn, account=funding, amount=-100, kind="grant", balance_after=0
            )
            Entry.objects.create(
                transaction=txn, account=pool(alice), amount=101, kind="grant", balance_after=0
            )

    assert not Transaction.objects.filter(reference="a cent over").exists()


def test_it_checks_the_sum_only_at_commit_so_legs_may_be_written_one_by_one(postgres, alice):
    funding = services.platform_account(Account.Kind.FUNDING)

    with transaction.atomic():
        txn = Transaction.objects.create(kind=Transaction.Kind.GRANT, reference="legs")
        # Unbalanced between these two statements; the deferred trigger waits for the commit.
        Entry.objects.create(
            transaction=txn, account=funding, amount=-3, kind="grant", balance_after=0
        )
        Entry.objects.create(
            transaction=txn, account=funding, amount=3, kind="grant", balance_after=0
        )

    # Both legs on the funding account: the ledger and its cached balances still agree.
    assert list(txn.entries.values_list("amount", flat=True).order_by("id")) == [-3, 3]


# Balances


@pytest.mark.parametrize("kind", [Account.Kind.POOL, Account.Kind.ESCROW])
def test_it_refuses_a_negative_owner_balance(alice, kind):
    account = Account.objects.get(owner=alice.owner, kind=kind)

    with pytest.raises(DatabaseError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(balance=-1)

    assert Account.objects.get(pk=account.pk).balance == account.balance


@pytest.mark.parametrize("kind", [Account.Kind.EARNINGS, Account.Kind.FUNDING, Account.Kind.FEES])
def test_it_lets_earnings_funding_and_fees_go_negative(rex, kind):
    if kind == Account.Kind.EARNINGS:
        account = Account.objects.get(agent=rex.agent, kind=kind)
    else:
        account = services.platform_account(kind)

    with transaction.atomic():
        Account.objects.filter(pk=account.pk).update(balance=-1)
        assert Account.objects.get(pk=account.pk).balance == -1
        transaction.set_rollback(True)

    assert Account.objects.get(pk=account.pk).balance == account.balance


def test_it_refuses_an_entry_of_zero(alice):
    funding = services.platform_account(Account.Kind.FUNDING)

    with pytest.raises(DatabaseError), transaction.atomic():
        txn = Transaction.objects.create(kind=Transaction.Kind.GRANT, reference="nothing")
        Entry.objects.create(
            transaction=txn, account=funding, amount=0, kind="grant", balance_after=0
        )

    assert not Transaction.objects.filter(reference="nothing").exists()
