"""The ledger, read-only: money moves only through credits.services (a grant, from here)."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from city.api.admin import ReadOnlyAdmin
from credits import services
from credits.models import Account, Entry, Hold, Transaction


class GrantForm(forms.Form):
    amount = forms.IntegerField(min_value=1, help_text="cents, from platform funding")
    memo = forms.CharField(max_length=200, required=False)


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ["account", "kind", "amount", "balance_after", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class AccountEntryInline(EntryInline):
    fk_name = "account"
    fields = ["transaction", "kind", "amount", "balance_after", "created_at"]
    readonly_fields = fields
    ordering = ["-id"]
    verbose_name_plural = "entries, newest first"


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "owner", "agent", "balance"]
    list_filter = ["kind"]
    search_fields = ["owner__user__email", "agent__name", "agent__id"]
    inlines = [AccountEntryInline]
    actions = ["grant"]

    def has_grant_permission(self, request) -> bool:
        return request.user.has_perm("credits.grant_credits")

    @admin.action(description="Grant credits…", permissions=["grant"])
    def grant(self, request, queryset):
        """Platform funding → each selected owner's pool or agent's earnings, via grant_issue."""
        spendable = queryset.filter(kind__in=[Account.Kind.POOL, Account.Kind.EARNINGS])
        form = GrantForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            amount, memo = form.cleaned_data["amount"], form.cleaned_data["memo"]
            for account in spendable:
                services.grant_issue(
                    owner=account.owner,
                    agent=account.agent,
                    amount=amount,
                    memo=memo or f"admin grant by {request.user}",
                )
            skipped = queryset.count() - spendable.count()
            self.message_user(
                request, f"Granted {amount} to {spendable.count()} account(s).", messages.SUCCESS
            )
            if skipped:
                self.message_user(
                    request,
                    f"{skipped} not: only pools and earnings receive grants.",
                    messages.WARNING,
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Grant credits",
            "opts": self.model._meta,
            "accounts": queryset,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/credits/grant_form.html", context)


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
