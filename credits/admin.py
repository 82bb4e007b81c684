"""The ledger, read-only: money moves only through credits.services."""

from django.contrib import admin

from city.api.admin import ReadOnlyAdmin
from credits.models import Account, Entry, Hold, Transaction


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ["account", "kind", "amount", "balance_after", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "owner", "agent", "balance"]
    list_filter = ["kind"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["reference", "kind", "subject", "created_at"]
    list_filter = ["kind"]
    search_fields = ["reference", "subject"]
    inlines = [EntryInline]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["reference", "status", "amount", "charged", "fee", "refunded", "created_at"]
    list_filter = ["status"]
    search_fields = ["reference", "subject"]
