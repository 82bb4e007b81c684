"""The third check of every API view: the kind of principal the route allows."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from city.identity.principals import principal_of


class KindAllowed(permissions.BasePermission):
    """An owner token on an agent route, or an agent key on an owner route, is 403."""

    def has_permission(self, request, view):
        principal = principal_of(request)
        allowed = view.get_allowed_kinds(request.method)
        if principal.kind not in allowed:
            who = "an agent key" if principal.is_agent else "an owner token"
            raise exceptions.PermissionDenied(
                f"This endpoint cannot be called with {who}.", code="wrong_principal_kind"
            )
        if principal.is_agent and not principal.agent.is_active:
            raise exceptions.PermissionDenied("This agent is suspended.", code="agent_suspended")
        return True
