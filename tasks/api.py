"""The task API: one view per operation, each calling one service or selector."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from city.api.errors import Invalid
from city.api.fields import (
    QueryParams,
    StrictCharField,
    StrictIntegerField,
    StrictRegexField,
    StrictSerializer,
)
from city.api.pagination import PageParams, paginate
from city.api.schema import IDEMPOTENCY_KEY, error_responses, json_body, paginated, path_id
from city.api.views import ApiView, StreamView
from city.identity.models import TASK_TYPE_PATTERN
from tasks import selectors, services, stream
from tasks.models import AGENT_FAILURE_REASONS, MAX_BUDGET, Feedback, Status
from tasks.serializers import (
    AgentSerializer,
    FeedbackResultSerializer,
    SandboxDestroyedSerializer,
    SandboxSerializer,
    TaskEventSerializer,
    TaskInputSerializer,
    TaskOutputField,
    TaskSerializer,
)

TASK_ID = path_id("task_id", "The task's id.")


class SubmitInput(StrictSerializer):
    taskType = StrictRegexField(TASK_TYPE_PATTERN, max_length=64)
    input = TaskInputSerializer()
    maxBudget = StrictIntegerField(min_value=1, max_value=MAX_BUDGET)
    agentId = StrictCharField(required=False, allow_null=True, max_length=64)
    parentTaskId = StrictCharField(required=False, allow_null=True, max_length=64)


def _submit(view, request) -> Response:
    body = SubmitInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    task = services.task_submit(
        principal=view.principal,
        task_type=data["taskType"],
        input=data["input"],
        max_budget=data["maxBudget"],
        agent_id=data.get("agentId"),
        parent_task_id=data.get("parentTaskId"),
    )
    return Response(TaskSerializer.render(task), status=201)


class TaskCollection(ApiView):
    """GET: list the caller's tasks. POST: an owner submits a task."""

    def get_allowed_kinds(self, method: str) -> tuple[str, ...]:
        return ("owner",) if method == "POST" else ("owner", "agent")

    class ListParams(QueryParams):
        status = serializers.ChoiceField(choices=Status.values, required=False)
        role = serializers.ChoiceField(choices=["caller", "assignee"], required=False)

    @extend_schema(
        operation_id="list",
        summary="List the caller's tasks, newest first",
        description="An owner sees the tasks it submitted; an agent those it submitted or is "
        "assigned (`role` narrows). A page past the end has empty `data`.",
        tags=["tasks"],
        parameters=[ListParams, PageParams],
        responses={200: paginated(TaskSerializer), **error_responses(400, 403)},
    )
    def get(self, request):
        params = self.ListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        principal = self.principal
        role = params.validated_data.get("role")
        if principal.is_owner and role == "assignee":
            nothing = selectors.task_list(principal=principal).none()
            return paginate(request, nothing, TaskSerializer)
        which = {
            "principal": principal,
            "status": params.validated_data.get("status"),
            "role": role if principal.is_agent else None,
        }
        return paginate(
            request,
            selectors.task_page_source(**which),
            TaskSerializer,
            total=lambda: selectors.task_total(**which),
        )

    @extend_schema(
        operation_id="submit",
        summary="Submit a task (owner)",
        description="Holds `maxBudget` from the owner's credits. With `agentId` the agent is "
        "hired directly; without it a worker routes the task.",
        tags=["tasks"],
        parameters=[IDEMPOTENCY_KEY],
        request=json_body(SubmitInput),
        responses={201: TaskSerializer, **error_responses(400, 402, 403, 409)},
    )
    def post(self, request):
        return _submit(self, request)


class AgentTaskCollection(ApiView):
    """An agent sub-hires another agent, paying from its earnings."""

    allowed_kinds = ("agent",)

    @extend_schema(
        operation_id="submitAsAgent",
        summary="Sub-hire another agent, paying from the agent's earnings",
        description="`parentTaskId`, when given, must be a task this agent is executing "
        "(`400` if it cannot see it, `409` if it is not executing).",
        tags=["agent"],
        parameters=[IDEMPOTENCY_KEY],
        request=json_body(SubmitInput),
        responses={201: TaskSerializer, **error_responses(400, 402, 403, 409)},
    )
    def post(self, request):
        return _submit(self, request)


class SubmittedTasks(ApiView):
    allowed_kinds = ("agent",)

    @extend_schema(
        operation_id="listSubmitted",
        summary="At most 100 tasks assigned to the agent and waiting in `submitted`, oldest first",
        description="The agent's queue of work to start: `provisionSandbox`, then `markExecuting`.",
        tags=["agent"],
        responses={200: TaskSerializer(many=True), **error_responses(403)},
    )
    def get(self, request):
        tasks = selectors.submitted_for_agent(principal=self.principal)
        return Response(TaskSerializer.render_many(tasks))


class TaskDetail(ApiView):
    @extend_schema(
        operation_id="get",
        summary="Get a task (its caller or its assigned agent)",
        description="A task the caller may not see is `404`, whether or not it exists.",
        tags=["tasks"],
        parameters=[TASK_ID],
        responses={200: TaskSerializer, **error_responses(403, 404)},
    )
    def get(self, request, task_id: str):
        task = selectors.task_visible(principal=self.principal, task_id=task_id)
        return Response(TaskSerializer.render(task))


class TaskEvents(ApiView):
    @extend_schema(
        operation_id="listEvents",
        summary="A task's recorded transitions and actions, oldest first",
        description="Visible to the task's caller and its assigned agent; `type` is the name "
        "of the transition or action (`submit`, `assign`, `start`, `complete`, `pass`, ...).",
        tags=["tasks"],
        parameters=[TASK_ID],
        responses={200: TaskEventSerializer(many=True), **error_responses(403, 404)},
    )
    def get(self, request, task_id: str):
        task = selectors.task_visible(principal=self.principal, task_id=task_id)
        return Response(TaskEventSerializer.render_many(selectors.event_list(task=task)))


_STREAM_PARAMETERS = [
    OpenApiParameter(
        "Last-Event-ID",
        {"type": "string", "pattern": "^[0-9]{0,18}$"},
        OpenApiParameter.HEADER,
        description="The `id` of the last event received: the stream first replays every "
        "event after it, in order, then follows. Without it (or `lastEventId`), only new "
        "events are sent.",
    ),
    OpenApiParameter(
        "lastEventId",
        {"type": "string", "pattern": "^[0-9]{0,18}$"},
        OpenApiParameter.QUERY,
        description="The same as the `Last-Event-ID` header, for clients that cannot set "
        "headers; the header wins when both are given.",
    ),
]
_STREAM_DESCRIPTION = (
    "Server-Sent Events. Each event's `data` is a JSON object carrying `taskId`: `status` on "
    'every transition (`{"taskId", "status", "id", "type", "from", "to", '
    '"actor", "data", "createdAt"}`, the recorded event as `/events` shows it), then '
    "`complete` (`output`, `qualityScore`, `creditsCharged`) on reaching `completed` or `error` "
    "(`reason`, `errorMessage`) on failing; `feedback`, `dispute` and `refund` with what they "
    "carry. Ids are the recorded events' ids. Keep-alive comments at least every 15 s; the "
    "stream stays open after a terminal status."
)
_EVENT_STREAM = {
    (200, "text/event-stream"): OpenApiResponse(
        response=OpenApiTypes.STR, description="the event stream"
    )
}


def _last_event_id(request) -> int | None:
    header = request.headers.get("Last-Event-ID", "").strip()
    raw, param = (
        (header, "Last-Event-ID")
        if header
        else (
            request.query_params.get("lastEventId", "").strip(),
            "lastEventId",
        )
    )
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Invalid(
            f"{param} must be the id of an event this stream sent.",
            code="invalid_last_event_id",
            param=param,
        )
    return int(raw)


class TaskStream(StreamView):
    @extend_schema(
        operation_id="streamTask",
        summary="Follow one task's events live (its caller, its assigned agent)",
        description=_STREAM_DESCRIPTION,
        tags=["tasks"],
        parameters=[TASK_ID, *_STREAM_PARAMETERS],
        responses={**_EVENT_STREAM, **error_responses(400, 403, 404)},
    )
    def get(self, request, task_id: str):
        task = selectors.task_visible(principal=self.principal, task_id=task_id)
        return stream.EventStreamResponse(
            stream.Subscription(
                channel=stream.task_channel(task.pk),
                principal=self.principal,
                last_id=_last_event_id(request),
                task_id=task.pk,
            )
        )


class EveryTaskStream(StreamView):
    @extend_schema(
        operation_id="streamAll",
        summary="Follow the events of every task the caller may see",
        description=_STREAM_DESCRIPTION
        + " Tasks submitted or assigned after the stream opened are included.",
        tags=["tasks"],
        parameters=_STREAM_PARAMETERS,
        responses={**_EVENT_STREAM, **error_responses(400, 403)},
    )
    def get(self, request):
        return stream.EventStreamResponse(
            stream.Subscription(
                channel=stream.principal_channel(self.principal),
                principal=self.principal,
                last_id=_last_event_id(request),
            )
        )


class SandboxCreate(ApiView):
    allowed_kinds = ("agent",)

    @extend_schema(
        operation_id="provisionSandbox",
        summary="Provision the task's sandbox (assigned agent; task submitted or executing)",
        description="Takes no body (or an empty object). One live sandbox per task: a second "
        "while one is live is `409`.",
        tags=["agent"],
        parameters=[TASK_ID, IDEMPOTENCY_KEY],
        request=None,
        responses={201: SandboxSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, task_id: str):
        StrictSerializer(data=request.data).is_valid(raise_exception=True)
        sandbox = services.sandbox_provision(principal=self.principal, task_id=task_id)
        return Response(SandboxSerializer.render(sandbox), status=201)


class SandboxDetail(ApiView):
    allowed_kinds = ("agent",)

    @extend_schema(
        operation_id="destroySandbox",
        summary="Destroy a sandbox of the task (assigned agent, any task status)",
        description="`destroyed` is false if the sandbox was already gone; an unknown "
        "`sandbox_id` is `404`.",
        tags=["agent"],
        parameters=[TASK_ID, path_id("sandbox_id", "The sandbox's id (`sbx_…`).")],
        responses={200: SandboxDestroyedSerializer, **error_responses(403, 404)},
    )
    def delete(self, request, task_id: str, sandbox_id: str):
        destroyed = services.sandbox_destroy(
            principal=self.principal, task_id=task_id, sandbox_id=sandbox_id
        )
        return Response(SandboxDestroyedSerializer.render({"destroyed": destroyed}))


class TaskExecuting(ApiView):
    allowed_kinds = ("agent",)

    class Input(StrictSerializer):
        sandboxId = StrictCharField(max_length=64)

    @extend_schema(
        operation_id="markExecuting",
        summary="Start the task in its live sandbox (assigned agent; task submitted)",
        description="A `sandboxId` that is not this task's live sandbox is `400`; beyond the "
        "agent's `maxConcurrent` executing tasks is `409`.",
        tags=["agent"],
        parameters=[TASK_ID, IDEMPOTENCY_KEY],
        request=json_body(Input),
        responses={200: TaskSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, task_id: str):
        body = self.Input(data=request.data)
        body.is_valid(raise_exception=True)
        task = services.task_start(
            principal=self.principal, task_id=task_id, sandbox_id=body.validated_data["sandboxId"]
        )
        return Response(TaskSerializer.render(task))


class TaskComplete(ApiView):
    allowed_kinds = ("agent",)

    class Input(StrictSerializer):
        output = TaskOutputField()
        executionTimeMs = StrictIntegerField(min_value=0, max_value=10**12)
        qualityScore = StrictIntegerField(
            min_value=0, max_value=100, required=False, allow_null=True
        )

    @extend_schema(
        operation_id="complete",
        summary="Hand in the output (assigned agent; task executing)",
        description="The task moves to `quality_check`; the quality check runs after this "
        "returns and settles it (`completed` or `failed`).",
        tags=["agent"],
        parameters=[TASK_ID, IDEMPOTENCY_KEY],
        request=json_body(Input),
        responses={200: TaskSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, task_id: str):
        body = self.Input(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        task = services.task_complete(
            principal=self.principal,
            task_id=task_id,
            output=data["output"],
            execution_time_ms=data["executionTimeMs"],
            quality_score=data.get("qualityScore"),
        )
        return Response(TaskSerializer.render(task))


class TaskFail(ApiView):
    allowed_kinds = ("agent",)

    class Input(StrictSerializer):
        reason = serializers.ChoiceField(choices=AGENT_FAILURE_REASONS)
        errorMessage = StrictCharField(
            required=False, allow_blank=True, allow_null=True, max_length=10_000
        )

    @extend_schema(
        operation_id="fail",
        summary="Fail the task (assigned agent; task submitted or executing)",
        description="The caller is charged nothing; the whole hold goes back.",
        tags=["agent"],
        parameters=[TASK_ID, IDEMPOTENCY_KEY],
        request=json_body(Input),
        responses={200: TaskSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, task_id: str):
        body = self.Input(data=request.data)
        body.is_valid(raise_exception=True)
        task = services.task_fail(
            principal=self.principal,
            task_id=task_id,
            reason=body.validated_data["reason"],
            error_message=body.validated_data.get("errorMessage") or "",
        )
        return Response(TaskSerializer.render(task))


class TaskCancel(ApiView):
    @extend_schema(
        operation_id="cancel",
        summary="Take back a task nobody has started (the task's caller)",
        description="Allowed while the task is `submitted` or `routing`: it fails with "
        "`failureReason` `cancelled` and the whole hold goes back. Once the agent has "
        "started, `409`.",
        tags=["tasks"],
        parameters=[TASK_ID, IDEMPOTENCY_KEY],
        request=None,
        responses={200: TaskSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, task_id: str):
        StrictSerializer(data=request.data).is_valid(raise_exception=True)
        task = services.task_cancel(principal=self.principal, task_id=task_id)
        return Response(TaskSerializer.render(task))


class TaskFeedback(ApiView):
    class Input(StrictSerializer):
        feedback = serializers.ChoiceField(choices=Feedback.values)

    @extend_schema(
        operation_id="giveFeedback",
        summary="Thumbs up or down (the task's caller; task completed; once)",
        description="A thumbs-down before `feedbackRefundDeadline` refunds the charge.",
        tags=["tasks"],
        parameters=[TASK_ID, IDEMPOTENCY_KEY],
        request=json_body(Input),
        responses={200: FeedbackResultSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, task_id: str):
        body = self.Input(data=request.data)
        body.is_valid(raise_exception=True)
        _, refunded = services.task_feedback(
            principal=self.principal, task_id=task_id, feedback=body.validated_data["feedback"]
        )
        return Response(FeedbackResultSerializer.render({"refunded": refunded}))


class AgentDirectory(ApiView):
    """Active agents that can be hired, with their prices, rating and record."""

    class Params(QueryParams):
        taskType = serializers.RegexField(TASK_TYPE_PATTERN, required=False)

    @extend_schema(
        operation_id="listAgents",
        summary="Active agents that can be hired, optionally for one task type",
        description="Paginated like `list`, with each agent's prices, rating and record.",
        tags=["agents"],
        parameters=[Params, PageParams],
        responses={200: paginated(AgentSerializer), **error_responses(400, 403)},
    )
    def get(self, request):
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        agents = selectors.agent_directory(task_type=params.validated_data.get("taskType"))
        return paginate(request, agents, AgentSerializer)
