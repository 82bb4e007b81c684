"""The dashboard's task pages: the same services, selectors and permission rules as the API (an
owner sees the tasks it submitted; another owner's task is a 404), and the same input
validation (the API's serializers)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Max
from django.db.models.fields.json import KT
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as ApiValidationError

from city.api.errors import ApiError
from city.identity.views import form_status, owner_principal, owner_required
from credits import selectors as ledger
from credits.money import CENTS, cents_of, credits_text
from credits.services import InsufficientCredits
from tasks import selectors, services
from tasks.errors import TaskNotFound
from tasks.models import MAX_BUDGET, Feedback, Status, Task, TaskEvent
from tasks.serializers import TaskInputSerializer

PAGE_SIZE = 25


def _visible(request, task_id: str) -> Task:
    try:
        return selectors.task_visible(principal=owner_principal(request), task_id=task_id)
    except TaskNotFound:
        raise Http404("No such task.") from None


@owner_required
def home(request):
    return redirect("dashboard:tasks")


class TaskFilter(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Status.choices], required=False, label="Status"
    )
    q = forms.CharField(required=False, max_length=200, label="Search")


@owner_required
def task_list(request):
    """My tasks, newest first, filtered by status and searched by id, type or description. The
    page follows the owner's stream: a task's event reloads the rows (htmx)."""
    filters = TaskFilter(request.GET or None)
    status = query = None
    if filters.is_valid():
        status = filters.cleaned_data["status"] or None
        query = filters.cleaned_data["q"].strip() or None
    tasks = (
        selectors.task_search(principal=owner_principal(request), status=status, query=query)
        # A row shows the description, not the whole input (up to MAX_TASK_INPUT_BYTES) or output.
        .defer("input", "output")
        .annotate(description=KT("input__description"))
    )
    # The stream starts after the newest event when the page was read: none is missed between.
    last_event_id = TaskEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    keep = request.GET.copy()
    keep.pop("page", None)
    return render(
        request,
        "dashboard/task_list.html",
        {
            "filters": filters,
            "page": page,
            "query_string": keep.urlencode(),
            "last_event_id": last_event_id,
        },
        status=form_status(filters),
    )


@owner_required
def task_detail(request, task_id: str):
    """A task's page; its live part (status, money, output, timeline) is reloaded by htmx on
    each of the task's stream events."""
    task = _visible(request, task_id)
    now = timezone.now()
    deadline = task.feedback_refund_deadline
    events = list(selectors.event_list(task=task))
    seconds_left = max(0, int((deadline - now).total_seconds())) if deadline else 0
    return render(
        request,
        "dashboard/task_detail.html",
        {
            "task": task,
            "events": events,
            # The stream starts after the last event shown: none is missed in between.
            "last_event_id": max((event.pk for event in events), default=0),
            "subtasks": task.subtasks.select_related("agent").order_by("created_at", "id"),
            "sandboxes": task.sandboxes.order_by("created_at"),
            "can_cancel": task.status in (Status.SUBMITTED, Status.ROUTING),
            "can_give_feedback": task.status == Status.COMPLETED and not task.feedback,
            "refund_deadline": deadline if deadline and now < deadline else None,
            "refund_seconds_left": seconds_left,
            "refund_time_left": "{}:{:02d}".format(*divmod(seconds_left, 60)),
        },
    )


# Submitting a task


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Any number of text files; each becomes ``{"name", "content"}`` in the task's input."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        uploads = data if isinstance(data, list | tuple) else [data] if data else []
        files = []
        for upload in uploads:
            upload = super().clean(upload, initial)
            try:
                content = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError(
                    f"{upload.name} is not a UTF-8 text file: attach source files only."
                ) from None
            files.append({"name": upload.name, "content": content})
        return files


class SubmitForm(forms.Form):
    """The API's submit (``POST /api/v1/tasks``) as a form: ``input`` is checked by the API's own
    serializer, the rest by the service, and each refusal lands next to its field."""

    task_type = forms.ChoiceField(label="Task type")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=100_000,
        help_text="What the agent should do.",
    )
    repo = forms.CharField(
        required=False, max_length=2000, label="Repository (optional)", help_text="e.g. a git URL"
    )
    code = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        label="Code (optional)",
    )
    files = MultipleFileField(required=False, label="Files (optional)")
    max_budget = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_value=Decimal(MAX_BUDGET) / CENTS,
        decimal_places=2,
        label="Budget (credits)",
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    agent = forms.ChoiceField(
        required=False,
        label="Agent",
        widget=forms.RadioSelect,
        help_text="Smart routing picks the best free agent within your budget.",
    )

    # Where each of the API's params is shown.
    FIELD_OF_PARAM = {
        "taskType": "task_type",
        "maxBudget": "max_budget",
        "agentId": "agent",
        "input.description": "description",
        "input.repo": "repo",
        "input.code": "code",
    }

    def __init__(self, *args, task_types, agents, available: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task_type"].choices = [(t, t) for t in task_types]
        self.fields["agent"].choices = [("", "Smart routing")] + [(a.pk, a.name) for a in agents]
        self.fields["max_budget"].help_text = (
            f"You have {credits_text(available)} credits available; the budget is held until "
            "the task is settled."
        )

    def task_input(self) -> dict:
        """The API's ``input`` from the cleaned fields, validated by the API's serializer."""
        data = {"description": self.cleaned_data["description"]}
        for name in ("repo", "code"):
            if self.cleaned_data[name]:
                data[name] = self.cleaned_data[name]
        if self.cleaned_data["files"]:
            data["files"] = self.cleaned_data["files"]
        serializer = TaskInputSerializer(data=data)
        try:
            serializer.is_valid(raise_exception=True)
        except ApiValidationError as error:
            for key, messages_ in error.detail.items():
                field = key if key in self.fields else None
                self.add_error(field, [str(m) for m in _flat(messages_)])
            return {}
        return serializer.validated_data

    def refuse(self, error: ApiError, *, agents) -> None:
        """Show a service's refusal next to the field it is about (a price in credits)."""
        message = error.message
        if error.code == "price_exceeds_budget":
            agent = next(a for a in agents if a.pk == self.cleaned_data["agent"])
            message = (
                f"{agent.name} charges {credits_text(agent.price)} credits for this task type: "
                "raise the budget, or choose smart routing or another agent."
            )
        self.add_error(self.FIELD_OF_PARAM.get(error.param or ""), message)


def _flat(detail):
    if isinstance(detail, dict):
        for value in detail.values():
            yield from _flat(value)
    elif isinstance(detail, list):
        for value in detail:
            yield from _flat(value)
    else:
        yield detail


@owner_required
def task_submit(request):
    """Submit a task: a type agents offer, the work, a budget, and smart routing or an agent
    from the directory (its price for the type, rating and completed tasks). Too little credit
    is said next to the budget, with the amount missing."""
    principal = owner_principal(request)
    task_types = selectors.offered_task_types()
    chosen = request.POST.get("task_type") or request.GET.get("task_type")
    task_type = chosen if chosen in task_types else (task_types[0] if task_types else None)
    agents = list(
        selectors.agents_offering(task_type=task_type, excluding=set()).order_by("price", "name")
        if task_type
        else []
    )
    available = ledger.balance_get(owner=principal.owner).available
    form = SubmitForm(
        request.POST or None,
        request.FILES or None,
        task_types=task_types,
        agents=agents,
        available=available,
        initial={"task_type": task_type},
    )
    if request.method == "POST" and form.is_valid():
        task_input = form.task_input()
        if not form.errors:
            try:
                task = services.task_submit(
                    principal=principal,
                    task_type=form.cleaned_data["task_type"],
                    input=task_input,
                    max_budget=cents_of(form.cleaned_data["max_budget"]),
                    agent_id=form.cleaned_data["agent"] or None,
                )
            except InsufficientCredits as error:
                form.add_error(
                    "max_budget",
                    f"You have {credits_text(error.available)} credits available: "
                    f"{credits_text(error.required - error.available)} more are needed for "
                    "this budget.",
                )
            except ApiError as error:
                form.refuse(error, agents=agents)
            else:
                messages.success(request, f"Task {task.pk} submitted.")
                return redirect("dashboard:task", task_id=task.pk)
    template = "dashboard/_agent_directory.html" if request.htmx else "dashboard/task_submit.html"
    return render(
        request,
        template,
        {"form": form, "agents": agents, "task_type": task_type, "available": available},
        status=form_status(form),
    )


# The caller's actions on a task


@require_POST
@owner_required
def task_cancel(request, task_id: str):
    # The service reads the task under lock, by the same visibility rule as the pages.
    try:
        task = services.task_cancel(principal=owner_principal(request), task_id=task_id)
    except TaskNotFound:
        raise Http404("No such task.") from None
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"Task cancelled: {credits_text(task.max_budget)} credits are available again."
        )
    return redirect("dashboard:task", task_id=task_id)


@require_POST
@owner_required
def task_feedback(request, task_id: str):
    feedback = request.POST.get("feedback")
    if feedback not in Feedback.values:
        _visible(request, task_id)  # another owner's task is a 404 whatever was sent
        messages.error(request, "Choose thumbs up or thumbs down.")
        return redirect("dashboard:task", task_id=task_id)
    try:
        task, refunded = services.task_feedback(
            principal=owner_principal(request), task_id=task_id, feedback=feedback
        )
    except TaskNotFound:
        raise Http404("No such task.") from None
    except ApiError as error:
        messages.error(request, error.message)
    else:
        if refunded:
            messages.success(
                request, f"Thanks. Refunded {credits_text(task.credits_refunded)} credits."
            )
        else:
            messages.success(request, "Thanks for your feedback.")
    return redirect("dashboard:task", task_id=task_id)
