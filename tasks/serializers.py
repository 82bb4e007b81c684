"""The task API's shapes, each declared once: it validates what comes in, renders what goes out,
and drf-spectacular documents it from the same declaration. Money is in cents."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from city.api.fields import StrictCharField, StrictIntegerField, StrictSerializer, json_storable
from city.api.serializers import BlankAsNull, BlankChoiceAsNull, ResponseSerializer, StoredJSON
from city.identity.models import TASK_TYPE_PATTERN
from tasks.models import MAX_BUDGET, FailureReason, Feedback, Status


class TaskFileSerializer(StrictSerializer):
    name = StrictCharField(max_length=1000)
    content = StrictCharField(allow_blank=True, trim_whitespace=False)


class TaskInputSerializer(StrictSerializer):
    """The work to do. Keys other than these are kept as the caller sent them, as long as they
    are storable JSON; the whole is at most ``MAX_TASK_INPUT_BYTES`` serialized."""

    as_stored = True  # rendered back exactly as the caller sent it

    description = StrictCharField(max_length=100_000)
    repo = StrictCharField(required=False, max_length=2000)
    code = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    files = TaskFileSerializer(many=True, required=False)
    timeoutSeconds = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=10**9,
        help_text="fail the task if it executes longer; capped by the platform's "
        "EXECUTION_TIMEOUT_SECONDS",
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid", datatype=type(data).__name__)
        json_storable(
            data, max_bytes=settings.MAX_TASK_INPUT_BYTES, too_large_code="input_too_large"
        )
        known = {key: data[key] for key in self.fields if key in data}
        return {**data, **super().to_internal_value(known)}


class TaskInputSchema(OpenApiSerializerExtension):
    """``TaskInput`` documents its named fields and admits any other key."""

    target_class = TaskInputSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": True}


@extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True})
class TaskOutputField(StoredJSON):
    """The agent's output: a JSON object, storable, at most ``MAX_TASK_OUTPUT_BYTES``."""

    default_error_messages = {"invalid": "Expected a JSON object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        return json_storable(
            data, max_bytes=settings.MAX_TASK_OUTPUT_BYTES, too_large_code="output_too_large"
        )


class TaskSerializer(ResponseSerializer):
    """A task. ``creditsHeld`` is what is held right now; ``creditsCharged`` null until
    completed."""

    id = serializers.CharField(source="pk", help_text="opaque, not a sequential integer")
    taskType = serializers.RegexField(TASK_TYPE_PATTERN, source="task_type")
    status = serializers.ChoiceField(choices=Status.values)
    input = TaskInputSerializer()
    output = TaskOutputField(allow_null=True, help_text="the agent's output, once complete")
    maxBudget = serializers.IntegerField(source="max_budget", min_value=1, max_value=MAX_BUDGET)
    creditsHeld = serializers.IntegerField(
        source="credits_held",
        min_value=0,
        help_text="held right now; 0 once the task is completed or failed",
    )
    creditsCharged = serializers.IntegerField(
        source="credits_charged",
        min_value=0,
        allow_null=True,
        help_text="null until completed, then the price",
    )
    creditsRefunded = serializers.IntegerField(
        source="credits_refunded",
        min_value=0,
        help_text="what went back to the caller after completion",
    )
    agentId = serializers.CharField(source="agent_id", allow_null=True, help_text="`ag_…`")
    parentTaskId = serializers.CharField(source="parent_id", allow_null=True)
    sandboxId = BlankAsNull(source="sandbox_id", help_text="`sbx_…` it started in")
    qualityScore = serializers.IntegerField(
        source="quality_score", min_value=0, max_value=100, allow_null=True
    )
    qualityReasons = serializers.ListField(
        source="quality_reasons",
        child=serializers.CharField(),
        help_text="the quality check's reasons for its score; empty until it has run",
    )
    selfReportedQualityScore = serializers.IntegerField(
        source="self_reported_quality_score", min_value=0, max_value=100, allow_null=True
    )
    executionTimeMs = serializers.IntegerField(
        source="execution_time_ms", min_value=0, allow_null=True
    )
    failureReason = BlankChoiceAsNull(choices=FailureReason.values, source="failure_reason")
    errorMessage = BlankAsNull(source="error_message")
    feedback = BlankChoiceAsNull(choices=Feedback.values)
    feedbackRefundDeadline = serializers.DateTimeField(
        source="feedback_refund_deadline",
        allow_null=True,
        help_text="completedAt plus FEEDBACK_REFUND_WINDOW_SECONDS; a thumbs-down strictly "
        "before it refunds",
    )
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)


class _StatusOrNone(BlankChoiceAsNull):
    def __init__(self, **kwargs):
        super().__init__(choices=Status.values, **kwargs)


class TaskEventSerializer(ResponseSerializer):
    """A recorded transition or action."""

    id = serializers.IntegerField()
    type = serializers.CharField(help_text="the transition or action: submit, assign, start, …")
    from_ = _StatusOrNone(source="from_status")
    to = _StatusOrNone(source="to_status")
    actor = serializers.CharField(help_text="owner:<id>, agent:<id> or system")
    data = StoredJSON(help_text="what the event carries: an object, its keys by type")
    createdAt = serializers.DateTimeField(source="created_at")

    def get_fields(self):
        # ``from`` is a Python keyword, so it is declared as ``from_``.
        return {
            ("from" if name == "from_" else name): field
            for name, field in super().get_fields().items()
        }


class SandboxSerializer(ResponseSerializer):
    sandboxId = serializers.CharField(source="pk", help_text="`sbx_…`")


class SandboxDestroyedSerializer(ResponseSerializer):
    destroyed = serializers.BooleanField(help_text="false if it was already gone")


class FeedbackResultSerializer(ResponseSerializer):
    refunded = serializers.BooleanField(help_text="whether the thumbs-down refunded the charge")


class AgentOfferSerializer(ResponseSerializer):
    taskType = serializers.RegexField(TASK_TYPE_PATTERN, source="task_type")
    price = serializers.IntegerField(min_value=1, help_text="cents")


class AgentSerializer(ResponseSerializer):
    """An agent in the directory, with its prices and record."""

    id = serializers.CharField(source="pk", help_text="`ag_…`")
    name = serializers.CharField()
    taskTypes = AgentOfferSerializer(source="offers", many=True)
    rating = serializers.IntegerField(
        min_value=0, max_value=100, allow_null=True, help_text="% thumbs-up; null if unrated"
    )
    completedTasks = serializers.IntegerField(source="completed", min_value=0)
