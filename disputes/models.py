"""Disputes: a caller's claim, after the thumbs-down window, that a completed task's charge
should come back; settled by a reviewer, with money moved only through
``tasks.services.task_refund``.

``status`` is a protected FSM field: ``filed → under_review → refunded | partially_refunded |
rejected``, and ``withdrawn`` by the caller before a decision. Every step is a
``DisputeEvent`` row, written in the same transaction as the change it records.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, transition

from city.identity.ids import random_id
from city.identity.models import Agent, Owner
from tasks.models import ProtectedStatusRefresh, Task


def dispute_id() -> str:
    return random_id("dsp_")


class Status(models.TextChoices):
    FILED = "filed"
    UNDER_REVIEW = "under_review"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


OPEN_STATUSES = (Status.FILED, Status.UNDER_REVIEW)


class Reason(models.TextChoices):
    QUALITY_BELOW_SPEC = "quality_below_spec"
    INCOMPLETE_DELIVERY = "incomplete_delivery"
    WRONG_OUTPUT = "wrong_output"
    DEADLINE_MISSED = "deadline_missed"
    MISREPRESENTATION = "misrepresentation"
    UNRESPONSIVE = "unresponsive"


class Dispute(ProtectedStatusRefresh):
    id = models.CharField(primary_key=True, max_length=32, default=dispute_id, editable=False)
    task = models.ForeignKey(Task, models.PROTECT, related_name="disputes")
    caller_owner = models.ForeignKey(
        Owner, models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    caller_agent = models.ForeignKey(
        Agent, models.PROTECT, null=True, blank=True, related_name="disputes_filed"
    )
    status = FSMField(default=Status.FILED, choices=Status.choices, protected=True)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    description = models.TextField()
    due_by = models.DateTimeField(help_text="the review deadline: filed plus the review SLA")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    refunded_amount = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("review_dispute", "Can review disputes and settle them with refunds")]
        indexes = [
            models.Index(fields=["status", "due_by"]),
            models.Index(fields=["caller_owner", "-created_at"]),
        ]
        constraints = [
            # One open dispute per task, enforced by the database too.
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(status__in=["filed", "under_review"]),
                name="dispute_one_open_per_task",
            ),
            models.CheckConstraint(
                condition=Q(caller_owner__isnull=False, caller_agent__isnull=True)
                | Q(caller_owner__isnull=True, caller_agent__isnull=False),
                name="dispute_has_one_caller",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0), name="dispute_refund_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} on {self.task_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    # Transitions: guards and fields on self only.

    @transition(status, source=Status.FILED, target=Status.UNDER_REVIEW)
    def start_review(self, *, reviewer) -> None:
        self.reviewer = reviewer

    @transition(status, source=Status.UNDER_REVIEW, target=Status.REFUNDED)
    def refund_fully(self, *, amount: int, note: str, at) -> None:
        self.refunded_amount = amount
        self.decision_note = note
        self.resolved_at = at

    @transition(status, source=Status.UNDER_REVIEW, target=Status.PARTIALLY_REFUNDED)
    def refund_partly(self, *, amount: int, note: str, at) -> None:
        self.refunded_amount = amount
        self.decision_note = note
        self.resolved_at = at

    @transition(status, source=Status.UNDER_REVIEW, target=Status.REJECTED)
    def reject(self, *, note: str, at) -> None:
        self.decision_note = note
        self.resolved_at = at

    @transition(status, source=list(OPEN_STATUSES), target=Status.WITHDRAWN)
    def withdraw(self, *, at) -> None:
        self.resolved_at = at


class DisputeEvent(models.Model):
    """An append-only record of every step of a dispute."""

    dispute = models.ForeignKey(Dispute, models.CASCADE, related_name="events")
    type = models.CharField(max_length=32)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    actor = models.CharField(max_length=64, help_text="owner:<id>, agent:<id>, staff:<id>")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type} {self.from_status}→{self.to_status}"
