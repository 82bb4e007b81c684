"""The dispute API's shapes, each declared once: rendered and documented from the same fields."""

from __future__ import annotations

from rest_framework import serializers

from city.api.fields import StrictCharField, StrictSerializer
from city.api.serializers import BlankAsNull, ResponseSerializer
from disputes.models import Reason, Status


class DisputeInput(StrictSerializer):
    reason = serializers.ChoiceField(choices=Reason.values)
    description = StrictCharField(max_length=10_000)


class DisputeSerializer(ResponseSerializer):
    """A dispute on a task, as its caller sees it. Money is in cents."""

    id = serializers.CharField(source="pk", help_text="`dsp_…`")
    taskId = serializers.CharField(source="task_id")
    status = serializers.ChoiceField(choices=Status.values)
    reason = serializers.ChoiceField(choices=Reason.values)
    description = serializers.CharField()
    dueBy = serializers.DateTimeField(source="due_by", help_text="the review deadline")
    refundedAmount = serializers.IntegerField(source="refunded_amount", min_value=0)
    decisionNote = BlankAsNull(source="decision_note", help_text="the reviewer's note")
    createdAt = serializers.DateTimeField(source="created_at")
    resolvedAt = serializers.DateTimeField(source="resolved_at", allow_null=True)
