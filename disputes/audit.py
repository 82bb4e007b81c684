"""Disputes' money against their tasks'; run by ``manage.py check_ledger`` (LEDGER_AUDITS)."""

from __future__ import annotations

from django.db.models import Sum

from disputes.models import Dispute, Status


def dispute_money_audit() -> list[str]:
    problems: list[str] = []
    refunded = (
        Dispute.objects.filter(status__in=[Status.REFUNDED, Status.PARTIALLY_REFUNDED])
        .values("task_id", "task__credits_refunded", "task__status")
        .annotate(total=Sum("refunded_amount"))
    )
    for row in refunded:
        if row["total"] > row["task__credits_refunded"]:
            problems.append(
                f"task {row['task_id']}: disputes refunded {row['total']}, "
                f"the task only {row['task__credits_refunded']}"
            )
    for dispute in Dispute.objects.filter(status=Status.REFUNDED).exclude(task__status="refunded"):
        problems.append(f"dispute {dispute.pk} is refunded but its task is not")
    return problems
