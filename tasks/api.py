"""The task API: one view per operation, each calling one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from city.api.errors import NotFound
from city.api.fields import StrictCharField, StrictIntegerField, StrictRegexField, StrictSerializer
from city.api.pagination import PageParams, paginate
from city.api.schema import IDEMPOTENCY_KEY, error_responses, json_body, path_id
from city.api.views import ApiView
from city.identity.models import Agent
from tasks import selectors, services
from tasks.models import FailureReason, Feedback, Status
from tasks.schema import (
    FeedbackResultSerializer,
    PaginatedAgentListSerializer,
    PaginatedTaskListSerializer,
    SandboxDestroyedSerializer,
    SandboxSerializer,
    TaskEventSerializer,
    TaskSerializer,
)
from tasks.serializers import event_out, task_out

MAX_BUDGET = 1_000_000_000_000

TASK_ID = path_id("task_id", "The task's id.")


class FileInput(StrictSerializer):
    name = StrictCharField(max_length=1000)
    content = StrictCharField(allow_blank=True, trim_whitespace=False)


class TaskInputField(serializers.Field):
    """``input``: an object with a ``description``; other keys are kept as the caller sent them."""

    default_error_messages = {"invalid": "Expected a JSON object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        known = {k: data[k] for k in ("description", "repo", "code", "files") if k in data}
        checked = _TaskInputKnown(data=known)
        if not checked.is_valid():
            raise serializers.ValidationError(checked.errors)
        return {**data, **checked.validated_data}

    def to_representation(self, value):
        return value


class _TaskInputKnown(serializers.Serializer):
    description = StrictCharField(max_length=100_000)
    repo = StrictCharField(required=False, max_length=2000)
    code = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    files = FileInput(many=True, required=False)


class SubmitInput(StrictSerializer):
    taskType = StrictRegexField(r"^[a-z0-9_]{1,64}$", max_length=64)
    input = TaskInputField()
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
    task.refresh_from_db()  # eager jobs (routing) may have moved it on commit
    return Response(task_out(task), status=201)


class TaskCollection(ApiView):
    """GET: list the caller's tasks. POST: an owner submits a task."""

    def get_allowed_kinds(self, method: str) -> tuple[str, ...]:
        return ("owner",) if method == "POST" else ("owner", "agent")

    class ListParams(serializers.Serializer):
        status = serializers.ChoiceField(choices=Status.values, required=False)
        role = serializers.ChoiceField(choices=["caller", "assignee"], required=False)

    @extend_schema(
        operation_id="list",
        summary="List the caller's tasks, newest first",
        description="An owner sees the tasks it submitted; an agent those it submitted or is "
        "assigned (`role` narrows). A page past the end has empty `data`.",
        tags=["tasks"],
        parameters=[ListParams, PageParams],
        responses={200: PaginatedTaskListSerializer, **error_responses(400, 403)},
    )
    def get(self, request):
        params = self.ListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        principal = self.principal
        role = params.validated_data.get("role")
        if principal.is_owner and role == "assignee":
            tasks = selectors.task_list(principal=principal).none()
        else:
            tasks = selectors.task_list(
                principal=principal,
                status=params.validated_data.get("status"),
                role=role if principal.is_agent else None,
            )
        return paginate(request, tasks, task_out)

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


def _visible_task(view, task_id: str):
    task = selectors.task_get(principal=view.principal, task_id=task_id)
    if task is None:
        raise NotFound(f"No such task: {task_id}", code="task_not_found")
    return task


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
        summary="Tasks assigned to the agent and waiting in `submitted`, oldest first",
        description="The agent's queue of work to start: `provisionSandbox`, then `markExecuting`.",
        tags=["agent"],
        responses={200: TaskSerializer(many=True), **error_responses(403)},
    )
    def get(self, request):
        tasks = selectors.submitted_for_agent(principal=self.principal)[:1000]
        return Response([task_out(task) for task in tasks])


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
        task = _visible_task(self, task_id)
        return Response(task_out(task))


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
        task = _visible_task(self, task_id)
        return Response([event_out(event) for event in selectors.event_list(task=task)])


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
        return Response({"sandboxId": sandbox.pk}, status=201)


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
        return Response({"destroyed": destroyed})


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
        return Response(task_out(task))


class TaskComplete(ApiView):
    allowed_kinds = ("agent",)

    class Input(StrictSerializer):
        output = serializers.DictField()
        executionTimeMs = StrictIntegerField(min_value=0, max_value=10**12)
        qualityScore = StrictIntegerField(
            min_value=0, max_value=100, required=False, allow_null=True
        )

    @extend_schema(
        operation_id="complete",
        summary="Hand in the output (assigned agent; task executing)",
        description="The task moves to `quality_check`, or later if the check has already run.",
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
            output=request.data["output"],
            execution_time_ms=data["executionTimeMs"],
            quality_score=data.get("qualityScore"),
        )
        task.refresh_from_db()  # the eager quality check may have settled it on commit
        return Response(task_out(task))


class TaskFail(ApiView):
    allowed_kinds = ("agent",)

    class Input(StrictSerializer):
        reason = serializers.ChoiceField(choices=FailureReason.values)
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
        return Response(task_out(task))


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
        return Response({"refunded": refunded})


class AgentDirectory(ApiView):
    """Active agents that can be hired, with their prices, rating and record."""

    class Params(serializers.Serializer):
        taskType = serializers.RegexField(r"^[a-z0-9_]{1,64}$", required=False)

    @extend_schema(
        operation_id="listAgents",
        summary="Active agents that can be hired, optionally for one task type",
        description="Paginated like `list`, with each agent's prices, rating and record.",
        tags=["agents"],
        parameters=[Params, PageParams],
        responses={200: PaginatedAgentListSerializer, **error_responses(400, 403)},
    )
    def get(self, request):
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        agents = selectors.agent_directory(task_type=params.validated_data.get("taskType"))
        return paginate(request, agents, agent_out)


def agent_out(agent: Agent) -> dict:
    rated = agent.ups + agent.downs
    return {
        "id": agent.pk,
        "name": agent.name,
        "taskTypes": [{"taskType": o.task_type, "price": o.price} for o in agent.offers.all()],
        "rating": round(100 * agent.ups / rated) if rated else None,
        "completedTasks": agent.completed,
    }
