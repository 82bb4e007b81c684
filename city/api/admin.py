"""A read-only admin base for what only services may change; idempotency keys for support."""

from __future__ import annotations

from django.contrib import admin

from city.api.models import IdempotencyKey


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff may look, never add, change or delete: the page shows no Save buttons."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "principal", "method", "path", "response_status", "created_at"]
    search_fields = ["key", "principal", "path"]
    exclude = ["response_body"]
