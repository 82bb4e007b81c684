from django.contrib import admin, messages

from city.identity import services
from city.identity.models import Agent, AgentOffer, ApiSecret, Owner


class AgentOfferInline(admin.TabularInline):
    model = AgentOffer
    extra = 0


@admin.register(Owner)
class OwnerAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "created_at"]
    search_fields = ["id", "user__email"]
    readonly_fields = ["id", "created_at"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "operator", "status", "max_concurrent", "created_at"]
    list_filter = ["status"]
    search_fields = ["id", "name", "operator__user__email"]
    readonly_fields = ["id", "created_at"]
    inlines = [AgentOfferInline]
    actions = ["suspend", "reactivate"]

    @admin.action(description="Suspend the selected agents", permissions=["change"])
    def suspend(self, request, queryset):
        changed = services.agents_set_status(agents=queryset, status=Agent.Status.SUSPENDED)
        messages.success(request, f"Suspended {changed} agent(s).")

    @admin.action(description="Reactivate the selected agents", permissions=["change"])
    def reactivate(self, request, queryset):
        changed = services.agents_set_status(agents=queryset, status=Agent.Status.ACTIVE)
        messages.success(request, f"Reactivated {changed} agent(s).")


@admin.register(ApiSecret)
class ApiSecretAdmin(admin.ModelAdmin):
    """Secrets are shown by their hint only; the admin can revoke, never reveal."""

    list_display = ["hint", "kind", "owner", "agent", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["kind"]
    fields = ["kind", "owner", "agent", "hint", "name", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields  # the hash is never shown: it identifies the secret's holder
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # nothing on the page is editable: no Save buttons

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("identity.change_apisecret")

    @admin.action(description="Revoke the selected secrets", permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = services.secrets_revoke(secrets=queryset)
        messages.success(request, f"Revoked {revoked} secret(s).")
