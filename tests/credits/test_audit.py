"""check_ledger finds each kind of discrepancy it promises to find."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from credits.audit import ledger_audit
from credits.models import Account, Hold
from tasks.audit import task_money_audit
from tasks.models import Task

pytestmark = pytest.mark.ledger_unchecked


def test_it_passes_a_ledger_after_a_completed_task(completed):
    assert ledger_audit() == []
    assert task_money_audit() == []


def test_it_finds_a_cached_balance_that_drifted_from_its_entries(alice):
    Account.objects.filter(owner=alice.owner, kind="pool").update(balance=1)
    problems = ledger_audit()
    assert any("caches 1 but its entries sum to 100000" in p for p in problems), problems
    with pytest.raises(CommandError, match="1 discrepancies"):
        call_command("check_ledger")


def test_it_finds_an_escrow_that_does_not_match_its_open_holds(submitted):
    Hold.objects.filter(subject=submitted["id"]).update(status="released")
    problems = ledger_audit()
    assert any("holds 5000 but its open holds total 0" in p for p in problems), problems


def test_it_finds_a_task_whose_charge_differs_from_its_hold(completed):
    Task.objects.filter(pk=completed["id"]).update(credits_charged=2600)
    problems = task_money_audit()
    assert any("charged 2500 vs task 2600" in p for p in problems), problems


def test_it_finds_a_failed_task_whose_hold_is_still_open(submitted):
    Task.objects.filter(pk=submitted["id"]).update(status="failed", credits_held=0)
    problems = task_money_audit()
    assert any("hold is open" in p for p in problems), problems
