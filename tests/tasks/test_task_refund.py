"""tasks.services.task_refund: the one way a completed task's charge goes back to its caller."""

from __future__ import annotations

import pytest

from credits.models import Entry
from tasks import services
from tasks.errors import InvalidTransition
from tasks.models import Task


def refund(task_id: str, amount: int | None, reference: str = "r1") -> Task:
    return services.task_refund(
        task=Task.objects.get(pk=task_id),
        amount=amount,
        via="dispute",
        actor="staff:1",
        reference=f"task:{task_id}:refund:{reference}",
    )


def test_it_refunds_part_of_a_charge_and_leaves_the_task_completed(completed, alice, rex):
    before = alice.balance().available

    task = refund(completed["id"], 1000)

    assert (task.status, task.credits_refunded) == ("completed", 1000)
    assert alice.balance().available == before + 1000
    # 10% fee: 100 comes back from the fees, 900 from the agent's earnings.
    assert rex.balance().available == 2250 - 900
    event = task.events.order_by("id").last()
    assert (event.type, event.from_status, event.to_status) == ("refund", "completed", "completed")
    assert event.data == {"amount": 1000, "refundedTotal": 1000, "via": "dispute"}


def test_it_moves_the_task_to_refunded_once_the_whole_charge_is_back(completed, alice, rex):
    refund(completed["id"], 1000, "first")

    task = refund(completed["id"], 1500, "second")

    assert (task.status, task.credits_refunded) == ("refunded", 2500)
    assert rex.balance().available == 0
    assert alice.balance().available == 100_000


def test_it_refunds_what_is_left_when_no_amount_is_given(completed):
    refund(completed["id"], 700, "first")

    task = refund(completed["id"], None, "rest")

    assert (task.status, task.credits_refunded) == ("refunded", 2500)


def test_it_moves_no_money_twice_under_one_reference(completed, alice):
    refund(completed["id"], 1000, "same")
    entries = Entry.objects.count()

    task = refund(completed["id"], 1000, "same")

    assert task.credits_refunded == 1000
    assert Entry.objects.count() == entries
    assert task.events.filter(type="refund").count() == 1


def test_it_refuses_more_than_is_left_and_moves_nothing(completed, alice):
    from credits.services import RefundExceedsCharge

    before = alice.balance().available

    with pytest.raises(RefundExceedsCharge):
        refund(completed["id"], 2501)

    assert alice.balance().available == before
    assert Task.objects.get(pk=completed["id"]).credits_refunded == 0


def test_it_refuses_a_task_that_is_not_completed(executing):
    with pytest.raises(InvalidTransition) as raised:
        refund(executing["id"], 100)

    assert raised.value.code == "task_executing"
