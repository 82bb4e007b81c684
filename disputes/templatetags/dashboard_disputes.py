"""The dispute panel of a task's dashboard page: the owner's disputes on the task, newest first,
and the form to file one while the task may be disputed.

A tag owned by ``disputes`` because the task page's view lives in ``tasks``, which may not import
this app. The panel reads the disputes in one query, and none for a task that never completed.
"""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.conf import settings
from django.utils import timezone

from city.identity.principals import Principal
from disputes import selectors
from disputes.views import DisputeForm, choice_label
from tasks.models import Status as TaskStatus

register = template.Library()

register.filter("choice_label", choice_label)

# What the panel offers for filing.
FORM = "form"  # the form
THUMBS = "thumbs"  # nothing yet: a thumbs-down refunds in full until the feedback deadline
CLOSED = "closed"  # nothing: DISPUTE_WINDOW_DAYS have passed


@register.inclusion_tag("dashboard/_dispute_panel.html", takes_context=True)
def dispute_panel(context, task):
    request = context.get("request")
    # A login without an owner has no ``owner``: its RelatedObjectDoesNotExist is an
    # AttributeError.
    owner = getattr(getattr(request, "user", None), "owner", None)
    # Disputes exist only on tasks that completed (and may have been refunded since).
    if (
        owner is None
        or task.caller_owner_id != owner.pk
        or task.status not in (TaskStatus.COMPLETED, TaskStatus.REFUNDED)
    ):
        return {"shown": False}
    disputes = list(
        selectors.dispute_list(principal=Principal(owner=owner)).filter(task_id=task.pk)
    )
    window_closes = task.completed_at + timedelta(days=settings.DISPUTE_WINDOW_DAYS)
    filing = _filing(task, disputes, window_closes)
    return {
        "shown": bool(disputes) or filing is not None,
        "request": request,
        "task": task,
        "disputes": disputes,
        "filing": filing,
        "form": DisputeForm() if filing == FORM else None,
        "thumbs_until": task.feedback_refund_deadline,
        "window_closes": window_closes,
        "sla_hours": settings.DISPUTE_REVIEW_SLA_HOURS,
    }


def _filing(task, disputes, window_closes) -> str | None:
    """What the panel offers for filing, by the rules of ``disputes.services.dispute_file``, and
    nothing while the thumbs-down's full refund is still on offer (the task page offers that)."""
    if task.status != TaskStatus.COMPLETED or any(d.is_open for d in disputes):
        return None  # refunded in full, or a dispute is open already
    now = timezone.now()
    if now >= window_closes:
        return CLOSED
    if now < task.feedback_refund_deadline:
        return THUMBS
    return FORM
