"""Every step of a dispute, one service each, in one transaction.

The caller files and may withdraw; a reviewer (the ``review_dispute`` permission) starts the
review and decides: a refund in full or in part, or a rejection with a note. Money moves only
through ``tasks.services.task_refund`` (and so the ledger), under a reference that names the
dispute, so a decision retried or raced moves nothing twice: the dispute row is locked first,
and a second reviewer finds it decided.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from city.identity.principals import Principal
from disputes.errors import (
    DecisionNoteRequired,
    DisputeAlreadyOpen,
    DisputeClosed,
    DisputeNotFound,
    DisputeWindowClosed,
    NotReviewer,
    TaskAlreadyRefunded,
)
from disputes.models import OPEN_STATUSES, Dispute, DisputeEvent, Status
from disputes.selectors import dispute_visible
from tasks import events as task_events
from tasks import services as task_services
from tasks.errors import InvalidTransition, NotCaller
from tasks.models import Status as TaskStatus
from tasks.models import Task
from tasks.selectors import is_caller, task_visible


def _record(dispute: Dispute, type_: str, *, actor: str, before: str, data=None) -> None:
    DisputeEvent.objects.create(
        dispute=dispute,
        type=type_,
        from_status=before,
        to_status=dispute.status,
        actor=actor,
        data=data or {},
    )


def _staff(user) -> str:
    return f"staff:{user.pk}"


# The caller's steps


@transaction.atomic
def dispute_file(*, principal: Principal, task_id: str, reason: str, description: str) -> Dispute:
    """Open a dispute on a completed task of the caller's, within DISPUTE_WINDOW_DAYS."""
    task = task_visible(principal=principal, task_id=task_id, for_update=True)
    if not is_caller(task, principal):
        raise NotCaller("dispute it")
    if task.status == TaskStatus.REFUNDED:
        raise TaskAlreadyRefunded()
    if task.status != TaskStatus.COMPLETED:
        raise InvalidTransition(task, "dispute")
    now = timezone.now()
    window = timedelta(days=settings.DISPUTE_WINDOW_DAYS)
    if now >= task.completed_at + window:
        raise DisputeWindowClosed(
            f"Disputes may be filed within {settings.DISPUTE_WINDOW_DAYS} days of completion; "
            f"this task completed at {task.completed_at.isoformat()}."
        )
    # The task row is locked, so two filings for it wait for each other here.
    if (open_ := task.disputes.filter(status__in=OPEN_STATUSES).first()) is not None:
        raise DisputeAlreadyOpen(open_.pk)
    dispute = Dispute.objects.create(
        task=task,
        caller_owner=principal.owner,
        caller_agent=principal.agent,
        reason=reason,
        description=description,
        due_by=now + timedelta(hours=settings.DISPUTE_REVIEW_SLA_HOURS),
    )
    actor = principal.key
    _record(dispute, "file", actor=actor, before="", data={"reason": reason})
    task_events.record(
        task_events.event(
            task,
            "dispute",
            actor=actor,
            before=task.status,
            data={"disputeId": dispute.pk, "reason": reason, "status": dispute.status},
        )
    )
    return dispute


@transaction.atomic
def dispute_withdraw(*, principal: Principal, dispute_id: str) -> Dispute:
    """The caller takes the dispute back before a decision."""
    dispute = dispute_visible(principal=principal, dispute_id=dispute_id, for_update=True)
    if dispute.status not in OPEN_STATUSES:
        raise DisputeClosed(dispute, "withdraw")
    before = dispute.status
    dispute.withdraw(at=timezone.now())
    dispute.save()
    _record(dispute, "withdraw", actor=principal.key, before=before)
    return dispute


# The reviewer's steps


def _locked_for_review(reviewer, dispute_id: str) -> Dispute:
    if not reviewer.has_perm("disputes.review_dispute"):
        raise NotReviewer()
    dispute = Dispute.objects.select_for_update().filter(pk=dispute_id).first()
    if dispute is None:
        raise DisputeNotFound(dispute_id)
    return dispute


def _ensure_under_review(dispute: Dispute, reviewer, action: str) -> None:
    """A decision on a dispute nobody started reviewing starts the review first."""
    if dispute.status == Status.FILED:
        dispute.start_review(reviewer=reviewer)
        dispute.save()
        _record(dispute, "start_review", actor=_staff(reviewer), before=Status.FILED)
    if dispute.status != Status.UNDER_REVIEW:
        raise DisputeClosed(dispute, action)


@transaction.atomic
def dispute_start_review(*, reviewer, dispute_id: str) -> Dispute:
    dispute = _locked_for_review(reviewer, dispute_id)
    if dispute.status != Status.FILED:
        raise DisputeClosed(dispute, "start reviewing")
    _ensure_under_review(dispute, reviewer, "start reviewing")
    return dispute


@transaction.atomic
def dispute_refund(
    *, reviewer, dispute_id: str, amount: int | None = None, note: str = ""
) -> Dispute:
    """Refund ``amount`` of the task's charge (all that is left of it when None).

    The whole charge back moves the task to ``refunded`` and the dispute to ``refunded``; less
    leaves the task ``completed`` and the dispute ``partially_refunded``.
    """
    dispute = _locked_for_review(reviewer, dispute_id)
    _ensure_under_review(dispute, reviewer, "refund")
    task = Task.objects.select_related("hold").get(pk=dispute.task_id)
    if task.status == TaskStatus.REFUNDED:
        raise TaskAlreadyRefunded()
    refunded = task.hold.refundable if amount is None else amount
    # task_refund locks the task and refuses an amount outside 1..what is still refundable.
    task = task_services.task_refund(
        task=task,
        amount=refunded,
        via="dispute",
        actor=_staff(reviewer),
        reference=f"dispute:{dispute.pk}:refund",
    )
    before = dispute.status
    now = timezone.now()
    if task.status == TaskStatus.REFUNDED:
        dispute.refund_fully(amount=refunded, note=note, at=now)
    else:
        dispute.refund_partly(amount=refunded, note=note, at=now)
    dispute.save()
    _record(
        dispute,
        "refund",
        actor=_staff(reviewer),
        before=before,
        data={"amount": refunded, "taskRefundedTotal": task.credits_refunded},
    )
    return dispute


@transaction.atomic
def dispute_reject(*, reviewer, dispute_id: str, note: str) -> Dispute:
    """Decide against the caller; the note tells them why."""
    if not note.strip():
        raise DecisionNoteRequired()
    dispute = _locked_for_review(reviewer, dispute_id)
    _ensure_under_review(dispute, reviewer, "reject")
    before = dispute.status
    dispute.reject(note=note.strip(), at=timezone.now())
    dispute.save()
    _record(dispute, "reject", actor=_staff(reviewer), before=before)
    return dispute
