"""The dispute console: the reviewers' queue and their decisions, in the Django admin.

Open disputes come first, the oldest deadline first, overdue ones marked. Every decision goes
through ``disputes.services`` (money through ``task_refund`` and the ledger); the admin only
collects what a decision needs and reports, for a selection, how many succeeded and why the
others did not. Staff without the ``review_dispute`` permission see the queue but no actions.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from city.api.errors import ApiError
from disputes import services
from disputes.models import OPEN_STATUSES, Dispute, DisputeEvent, Status
from tasks.models import Task

OVERDUE = '<strong style="color: var(--error-fg, #ba2121)">{} · overdue</strong>'


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Within its deadline")]

    def queryset(self, request, queryset):
        overdue = Q(status__in=OPEN_STATUSES, due_by__lt=timezone.now())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class DisputeEventInline(admin.TabularInline):
    model = DisputeEvent
    fields = ["created_at", "type", "from_status", "to_status", "actor", "data"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "history"

    def has_add_permission(self, request, obj=None):
        return False


class AmountForm(forms.Form):
    amount = forms.IntegerField(min_value=1, help_text="cents")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="the caller reads it"
    )


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "state",
        "task_link",
        "caller",
        "agent",
        "reason",
        "charged",
        "age",
        "due",
    ]
    list_filter = [
        "status",
        "reason",
        OverdueFilter,
        ("task__agent", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["id", "task__id", "caller_owner__user__email", "task__agent__name"]
    list_select_related = ["task", "task__agent", "caller_owner__user", "caller_agent"]
    inlines = [DisputeEventInline]
    actions = ["start_review", "refund_in_full", "refund_in_part", "reject"]
    fieldsets = [
        (None, {"fields": ["id", "status", "reason", "description", "due_by", "created_at"]}),
        ("Decision", {"fields": ["reviewer", "decision_note", "refunded_amount", "resolved_at"]}),
        (
            "The task",
            {"fields": ["task_link", "task_money", "task_input", "task_output", "quality"]},
        ),
        ("Its history", {"fields": ["task_events"]}),
        ("The agent's record", {"fields": ["agent_record"]}),
        ("The caller's earlier disputes", {"fields": ["earlier_disputes"]}),
    ]
    readonly_fields = [
        "id",
        "status",
        "reason",
        "description",
        "due_by",
        "created_at",
        "reviewer",
        "decision_note",
        "refunded_amount",
        "resolved_at",
        "task_link",
        "task_money",
        "task_input",
        "task_output",
        "quality",
        "task_events",
        "agent_record",
        "earlier_disputes",
    ]

    def get_queryset(self, request):
        # The queue: open disputes first, the oldest deadline first.
        return (
            super()
            .get_queryset(request)
            .annotate(
                closed=Case(
                    When(status__in=OPEN_STATUSES, then=Value(0)),
                    default=Value(1),
                    output_field=IntegerField(),
                )
            )
            .order_by("closed", "due_by", "id")
        )

    # Nothing is edited here: decisions are actions, through the services.

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm("disputes.review_dispute")

    # Columns

    @admin.display(description="status", ordering="status")
    def state(self, dispute: Dispute):
        if dispute.is_open and dispute.due_by < timezone.now():
            return format_html(
                '<strong style="color:#ba2121">{} · overdue</strong>', dispute.status
            )
        return dispute.status

    @admin.display(description="task", ordering="task")
    def task_link(self, dispute: Dispute):
        url = reverse("admin:tasks_task_change", args=[dispute.task_id])
        return format_html('<a href="{}">{}</a>', url, dispute.task_id)

    @admin.display(description="caller")
    def caller(self, dispute: Dispute):
        return dispute.caller_owner or dispute.caller_agent

    @admin.display(description="agent", ordering="task__agent__name")
    def agent(self, dispute: Dispute):
        return dispute.task.agent.name if dispute.task.agent else "—"

    @admin.display(description="charged", ordering="task__credits_charged")
    def charged(self, dispute: Dispute):
        return dispute.task.credits_charged

    @admin.display(description="age", ordering="created_at")
    def age(self, dispute: Dispute):
        hours = (timezone.now() - dispute.created_at).total_seconds() // 3600
        return f"{int(hours // 24)} d {int(hours % 24)} h"

    @admin.display(description="due by", ordering="due_by")
    def due(self, dispute: Dispute):
        return dispute.due_by

    # The change page: everything a reviewer needs without leaving it

    @admin.display(description="money")
    def task_money(self, dispute: Dispute):
        task = dispute.task
        return format_html(
            "budget {} · charged {} · refunded {} · still refundable {}",
            task.max_budget,
            task.credits_charged,
            task.credits_refunded,
            (task.credits_charged or 0) - task.credits_refunded,
        )

    @admin.display(description="input")
    def task_input(self, dispute: Dispute):
        return _json(dispute.task.input)

    @admin.display(description="output")
    def task_output(self, dispute: Dispute):
        return _json(dispute.task.output)

    @admin.display(description="quality verdict")
    def quality(self, dispute: Dispute):
        task = dispute.task
        reasons = format_html_join("", "<li>{}</li>", ((r,) for r in task.quality_reasons))
        return format_html(
            "score {} (self-reported {})<ul>{}</ul>",
            task.quality_score,
            task.self_reported_quality_score,
            reasons,
        )

    @admin.display(description="events")
    def task_events(self, dispute: Dispute):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (
                    e.created_at,
                    e.type,
                    e.from_status or "·",
                    e.to_status,
                    e.actor,
                    json.dumps(e.data),
                )
                for e in dispute.task.events.order_by("id")
            ),
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description="record")
    def agent_record(self, dispute: Dispute):
        agent = dispute.task.agent
        if agent is None:
            return "—"
        tasks = Task.objects.filter(agent=agent)
        record = tasks.aggregate(
            delivered=Count("pk", filter=Q(status__in=["completed", "refunded"])),
            refunded=Count("pk", filter=Q(credits_refunded__gt=0)),
        )
        disputes = Dispute.objects.filter(task__agent=agent).aggregate(
            total=Count("pk"),
            lost=Count("pk", filter=Q(status__in=[Status.REFUNDED, Status.PARTIALLY_REFUNDED])),
        )
        return format_html(
            "{}: {} tasks delivered, {} refunded in part or whole; {} disputes, {} lost",
            agent,
            record["delivered"],
            record["refunded"],
            disputes["total"],
            disputes["lost"],
        )

    @admin.display(description="disputes")
    def earlier_disputes(self, dispute: Dispute):
        earlier = Dispute.objects.filter(
            caller_owner=dispute.caller_owner, caller_agent=dispute.caller_agent
        ).exclude(pk=dispute.pk)
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a> {} · {} · refunded {}</li>',
            (
                (
                    reverse("admin:disputes_dispute_change", args=[d.pk]),
                    d.pk,
                    d.created_at.date(),
                    d.status,
                    d.refunded_amount,
                )
                for d in earlier.order_by("-created_at")[:20]
            ),
        )
        return format_html("<ul>{}</ul>", rows) if rows else "none"

    # Actions, each through a service; a selection reports how many succeeded and why not

    def _each(self, request, queryset, verb: str, decide) -> None:
        done, refused = 0, []
        for dispute in queryset:
            try:
                decide(dispute)
                done += 1
            except ApiError as exc:
                refused.append(f"{dispute.pk}: {exc.message}")
        if done:
            self.message_user(request, f"{verb} {done} dispute(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"{len(refused)} not: " + "; ".join(refused),
                messages.WARNING,
            )

    @admin.action(description="Start review (assign to me)", permissions=["review"])
    def start_review(self, request, queryset):
        self._each(
            request,
            queryset,
            "Started reviewing",
            lambda d: services.dispute_start_review(reviewer=request.user, dispute_id=d.pk),
        )

    @admin.action(description="Refund in full", permissions=["review"])
    def refund_in_full(self, request, queryset):
        self._each(
            request,
            queryset,
            "Refunded in full",
            lambda d: services.dispute_refund(reviewer=request.user, dispute_id=d.pk),
        )

    @admin.action(description="Refund in part…", permissions=["review"])
    def refund_in_part(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(
                request, "A partial refund is decided one dispute at a time.", messages.WARNING
            )
            return None
        dispute = queryset.get()
        refundable = (dispute.task.credits_charged or 0) - dispute.task.credits_refunded
        form = AmountForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            amount = form.cleaned_data["amount"]
            if amount > refundable:
                form.add_error("amount", f"At most {refundable} is still refundable.")
            else:
                self._each(
                    request,
                    queryset,
                    f"Refunded {amount} of",
                    lambda d: services.dispute_refund(
                        reviewer=request.user,
                        dispute_id=d.pk,
                        amount=amount,
                        note=form.cleaned_data["note"],
                    ),
                )
                return None
        return self._form_page(request, queryset, form, "refund_in_part", refundable=refundable)

    @admin.action(description="Reject (with a note)…", permissions=["review"])
    def reject(self, request, queryset):
        form = NoteForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._each(
                request,
                queryset,
                "Rejected",
                lambda d: services.dispute_reject(
                    reviewer=request.user, dispute_id=d.pk, note=form.cleaned_data["note"]
                ),
            )
            return None
        return self._form_page(request, queryset, form, "reject")

    def _form_page(self, request, queryset, form, action: str, **extra):
        titles = {"refund_in_part": "Refund in part", "reject": "Reject with a note"}
        context = {
            **self.admin_site.each_context(request),
            "title": titles[action],
            "opts": self.model._meta,
            "disputes": queryset,
            "form": form,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            **extra,
        }
        return TemplateResponse(request, "admin/disputes/decision_form.html", context)


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))
