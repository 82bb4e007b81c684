"""Documentation-only serializers for the task API's responses (see ``city.schema``).

They mirror ``tasks.serializers.task_out`` / ``event_out`` and ``tasks.api.agent_out``, which
build the actual JSON; nothing here validates or renders a request.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from rest_framework import serializers

from city.api.schema import paginated
from tasks.models import FailureReason, Feedback, Status

TASK_TYPE_PATTERN = r"^[a-z0-9_]{1,64}$"


class TaskFileSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=1000)
    content = serializers.CharField(allow_blank=True)


class TaskInputSerializer(serializers.Serializer):
    """The work to do; keys other than these are kept as the caller sent them."""

    description = serializers.CharField(max_length=100_000)
    repo = serializers.CharField(required=False, max_length=2000)
    code = serializers.CharField(required=False, allow_blank=True)
    files = TaskFileSerializer(many=True, required=False)


class TaskInputSchema(OpenApiSerializerExtension):
    target_class = TaskInputSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": True}


class TaskInputFieldSchema(OpenApiSerializerFieldExtension):
    """``tasks.api.TaskInputField`` validates ``input`` by hand; it has this shape."""

    target_class = "tasks.api.TaskInputField"

    def map_serializer_field(self, auto_schema, direction):
        return auto_schema.resolve_serializer(TaskInputSerializer, direction).ref


class TaskSerializer(serializers.Serializer):
    """A task, as ``tasks.serializers.task_out`` shows it. Money is in cents."""

    id = serializers.CharField(help_text="opaque, not a sequential integer")
    taskType = serializers.RegexField(TASK_TYPE_PATTERN)
    status = serializers.ChoiceField(choices=Status.values)
    input = TaskInputSerializer()
    output = serializers.DictField(allow_null=True, help_text="the agent's output, once complete")
    maxBudget = serializers.IntegerField(min_value=1, max_value=1_000_000_000_000)
    creditsHeld = serializers.IntegerField(
        min_value=0, help_text="held right now; 0 once the task is completed or failed"
    )
    creditsCharged = serializers.IntegerField(
        min_value=0, allow_null=True, help_text="null until completed, then the price"
    )
    creditsRefunded = serializers.IntegerField(
        min_value=0, help_text="what went back to the caller after completion"
    )
    agentId = serializers.CharField(allow_null=True, help_text="`ag_…`, once assigned")
    parentTaskId = serializers.CharField(allow_null=True)
    sandboxId = serializers.CharField(allow_null=True, help_text="`sbx_…` it started in")
    qualityScore = serializers.IntegerField(min_value=0, max_value=100, allow_null=True)
    selfReportedQualityScore = serializers.IntegerField(min_value=0, max_value=100, allow_null=True)
    executionTimeMs = serializers.IntegerField(min_value=0, allow_null=True)
    failureReason = serializers.ChoiceField(choices=FailureReason.values, allow_null=True)
    errorMessage = serializers.CharField(allow_null=True)
    feedback = serializers.ChoiceField(choices=Feedback.values, allow_null=True)
    feedbackRefundDeadline = serializers.DateTimeField(
        allow_null=True,
        help_text="completedAt plus FEEDBACK_REFUND_WINDOW_SECONDS; a thumbs-down strictly "
        "before it refunds",
    )
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)


class TaskEventSerializer(serializers.Serializer):
    """A recorded transition or action, as ``tasks.serializers.event_out`` shows it."""

    id = serializers.IntegerField()
    type = serializers.CharField(help_text="the transition or action: submit, assign, start, …")
    from_ = serializers.ChoiceField(choices=Status.values, allow_null=True)
    to = serializers.ChoiceField(choices=Status.values, allow_null=True)
    actor = serializers.CharField(help_text="owner:<id>, agent:<id> or system")
    data = serializers.DictField()
    createdAt = serializers.DateTimeField()

    def get_fields(self):
        # ``from`` is a Python keyword, so it is declared as ``from_``.
        return {
            ("from" if name == "from_" else name): field
            for name, field in super().get_fields().items()
        }


class SandboxSerializer(serializers.Serializer):
    sandboxId = serializers.CharField(help_text="`sbx_…`")


class SandboxDestroyedSerializer(serializers.Serializer):
    destroyed = serializers.BooleanField(help_text="false if it was already gone")


class FeedbackResultSerializer(serializers.Serializer):
    refunded = serializers.BooleanField(help_text="whether the thumbs-down refunded the charge")


class AgentOfferSerializer(serializers.Serializer):
    taskType = serializers.RegexField(TASK_TYPE_PATTERN)
    price = serializers.IntegerField(min_value=0, help_text="cents")


class AgentSerializer(serializers.Serializer):
    """An agent in the directory, as ``tasks.api.agent_out`` shows it."""

    id = serializers.CharField(help_text="`ag_…`")
    name = serializers.CharField()
    taskTypes = AgentOfferSerializer(many=True)
    rating = serializers.IntegerField(
        min_value=0, max_value=100, allow_null=True, help_text="% thumbs-up; null if unrated"
    )
    completedTasks = serializers.IntegerField(min_value=0)


PaginatedTaskListSerializer = paginated(TaskSerializer)
PaginatedAgentListSerializer = paginated(AgentSerializer)
