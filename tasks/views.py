"""The dashboard's task pages: the same selectors and permission rules as the API (an owner sees
the tasks it submitted; another owner's task is a 404)."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.db.models.fields.json import KT
from django.http import Http404
from django.shortcuts import redirect, render

from city.identity.principals import Principal
from city.identity.views import owner_required
from tasks import selectors
from tasks.errors import TaskNotFound
from tasks.models import Status

PAGE_SIZE = 25


def _principal(request) -> Principal:
    return Principal(owner=request.user.owner)


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
    """My tasks, newest first, filtered by status and searched by id, type or description."""
    filters = TaskFilter(request.GET or None)
    status = query = None
    if filters.is_valid():
        status = filters.cleaned_data["status"] or None
        query = filters.cleaned_data["q"].strip() or None
    tasks = (
        selectors.task_search(principal=_principal(request), status=status, query=query)
        # A row shows the description, not the whole input (up to MAX_TASK_INPUT_BYTES) or output.
        .defer("input", "output")
        .annotate(description=KT("input__description"))
    )
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    keep = request.GET.copy()
    keep.pop("page", None)
    return render(
        request,
        "dashboard/task_list.html",
        {"filters": filters, "page": page, "query_string": keep.urlencode()},
        status=400 if filters.is_bound and filters.errors else 200,
    )


@owner_required
def task_detail(request, task_id: str):
    try:
        task = selectors.task_visible(principal=_principal(request), task_id=task_id)
    except TaskNotFound:
        raise Http404("No such task.") from None
    return render(
        request,
        "dashboard/task_detail.html",
        {"task": task, "events": selectors.event_list(task=task)},
    )


@owner_required
def task_submit(request):
    raise Http404


@owner_required
def task_cancel(request, task_id: str):
    raise Http404


@owner_required
def task_feedback(request, task_id: str):
    raise Http404
