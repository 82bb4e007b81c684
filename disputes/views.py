"""The dashboard's dispute forms: an owner files a dispute on a task of theirs, or withdraws one,
through the same services and rules as the API (another owner's task or dispute is a 404).

The form is shown on the task's page by ``disputes.templatetags.dashboard_disputes`` (the task
page lives in ``tasks``, which may not import this app); a filing sent back with errors is shown
on a page of its own, ``dashboard/dispute_form.html``.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from city.api.errors import STATUS, ApiError, NotFound
from city.identity.views import owner_principal, owner_required
from disputes import selectors, services
from disputes.models import Reason
from disputes.serializers import DisputeInput
from tasks.errors import TaskNotFound
from tasks.selectors import task_visible

# The API's limit (DisputeInput), so that a page never accepts what the API would refuse.
DESCRIPTION_MAX_LENGTH = DisputeInput().fields["description"].max_length


def choice_label(value: str) -> str:
    """A status or reason as words: ``partially_refunded`` → "Partially refunded"."""
    return value.replace("_", " ").capitalize()


class DisputeForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[("", "Choose a reason"), *((r, choice_label(r)) for r in Reason.values)],
        label="Reason",
    )
    description = forms.CharField(
        label="What went wrong",
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What the reviewer should know: what you asked for and what you got.",
    )

    def __init__(self, *args, **kwargs):
        # Prefixed ids: the task page holds other forms (feedback, cancel).
        kwargs.setdefault("auto_id", "dispute-%s")
        super().__init__(*args, **kwargs)


@require_POST
@owner_required
def dispute_file(request, task_id: str):
    principal = owner_principal(request)
    form = DisputeForm(request.POST)
    if not form.is_valid():
        # Only a task of the owner's gets a page, even one that says what to fix.
        try:
            task_visible(principal=principal, task_id=task_id)
        except TaskNotFound:
            raise Http404("No such task.") from None
        return _form_page(request, form, task_id, status=400)
    try:
        dispute = services.dispute_file(
            principal=principal,
            task_id=task_id,
            reason=form.cleaned_data["reason"],
            description=form.cleaned_data["description"],
        )
    except NotFound:
        raise Http404("No such task.") from None
    except ApiError as error:
        # A refusal of the dispute itself (window closed, one open already, refunded in full,
        # not completed): the API's status, the service's words.
        form.add_error(None, error.message)
        return _form_page(request, form, task_id, status=STATUS[error.type])
    messages.success(
        request,
        f"Dispute {dispute.pk} filed: a reviewer will decide by "
        f"{timezone.localtime(dispute.due_by):%Y-%m-%d %H:%M %Z}.",
    )
    return redirect("dashboard:task", task_id=task_id)


def _form_page(request, form: DisputeForm, task_id: str, *, status: int):
    return render(
        request, "dashboard/dispute_form.html", {"form": form, "task_id": task_id}, status=status
    )


@require_POST
@owner_required
def dispute_withdraw(request, dispute_id: str):
    principal = owner_principal(request)
    try:
        dispute = services.dispute_withdraw(principal=principal, dispute_id=dispute_id)
    except NotFound:
        raise Http404("No such dispute.") from None
    except ApiError as error:
        # Decided (or withdrawn) already: back to its task, saying so.
        messages.error(request, error.message)
        dispute = selectors.dispute_visible(principal=principal, dispute_id=dispute_id)
    else:
        messages.success(request, f"Dispute {dispute.pk} withdrawn.")
    return redirect("dashboard:task", task_id=dispute.task_id)
