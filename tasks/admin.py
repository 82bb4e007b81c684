"""Tasks for staff, read-only: state changes only through tasks.services."""

from django.contrib import admin

from city.api.admin import ReadOnlyAdmin
from tasks.models import Sandbox, Task, TaskEvent


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    fields = ["created_at", "type", "from_status", "to_status", "actor", "data"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "task_type",
        "status",
        "caller_owner",
        "agent",
        "max_budget",
        "credits_charged",
        "created_at",
    ]
    list_filter = ["status", "task_type"]
    search_fields = ["id", "agent__name", "caller_owner__user__email"]
    inlines = [TaskEventInline]


@admin.register(Sandbox)
class SandboxAdmin(ReadOnlyAdmin):
    list_display = ["id", "task", "provider", "status", "created_at", "destroyed_at"]
    list_filter = ["status", "provider"]
    readonly_fields = [
        "id",
        "task",
        "provider",
        "external_id",
        "status",
        "created_at",
        "destroyed_at",
    ]
