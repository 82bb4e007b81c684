"""Every task's money must match its status; run by ``manage.py check_ledger``."""

from __future__ import annotations

from tasks.models import Status, Task


def task_money_audit() -> list[str]:
    problems: list[str] = []
    tasks = Task.objects.select_related("hold").iterator(chunk_size=2000)
    for task in tasks:
        hold = task.hold
        where = f"task {task.pk} ({task.status})"
        if hold is None:
            problems.append(f"{where} has no hold")
            continue
        if hold.amount != task.max_budget:
            problems.append(f"{where} holds {hold.amount}, not its budget {task.max_budget}")
        if task.status in (
            Status.SUBMITTED,
            Status.ROUTING,
            Status.EXECUTING,
            Status.QUALITY_CHECK,
        ):
            if hold.status != "open" or task.credits_held != hold.amount:
                problems.append(f"{where}: hold is {hold.status}, credits_held {task.credits_held}")
        elif task.status == Status.FAILED:
            if hold.status != "released" or task.credits_held or task.credits_charged:
                problems.append(f"{where}: hold is {hold.status} and it was charged")
        else:  # completed or refunded
            if hold.status != "captured" or hold.charged != task.credits_charged:
                problems.append(
                    f"{where}: hold is {hold.status}, charged {hold.charged} "
                    f"vs task {task.credits_charged}"
                )
            if task.credits_charged is not None and task.credits_charged > task.max_budget:
                problems.append(f"{where} charged {task.credits_charged} above its budget")
            if hold.refunded != task.credits_refunded:
                problems.append(
                    f"{where}: ledger refunded {hold.refunded}, task says {task.credits_refunded}"
                )
            if task.status == Status.REFUNDED and hold.refunded != hold.charged:
                problems.append(f"{where} refunded {hold.refunded} of {hold.charged}")
    return problems
