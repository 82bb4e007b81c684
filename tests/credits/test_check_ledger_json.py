"""``manage.py check_ledger --json`` prints exactly one object, ok or not."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from credits.models import Account, Entry, Transaction


def check_json() -> tuple[dict, str | None]:
    out = io.StringIO()
    try:
        call_command("check_ledger", "--json", stdout=out, stderr=io.StringIO())
        failure = None
    except CommandError as exc:
        failure = str(exc)
    return json.loads(out.getvalue()), failure


def test_it_reports_a_clean_ledger_as_one_object(completed):
    report, failure = check_json()

    assert failure is None
    assert report == {
        "ok": True,
        "transactions": Transaction.objects.count(),
        "entries": Entry.objects.count(),
        "accounts": Account.objects.count(),
        "discrepancies": [],
    }
    assert report["transactions"] >= 2


@pytest.mark.ledger_unchecked
def test_it_reports_each_discrepancy_and_fails(alice):
    pool = Account.objects.get(owner=alice.owner, kind=Account.Kind.POOL)
    Account.objects.filter(pk=pool.pk).update(balance=pool.balance + 7)

    report, failure = check_json()

    assert failure == "ledger check failed: 1 discrepancies"
    assert report["ok"] is False
    assert report["discrepancies"] == [
        f"account {pool.pk} (pool) caches {pool.balance + 7} but its entries sum to {pool.balance}"
    ]
