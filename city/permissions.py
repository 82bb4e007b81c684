"""Checks every API view runs, in the contract's order: credentials, method, kind of principal."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from city.principals import principal_of


class IsPrincipal(permissions.BasePermission):
    def has_permission(self, request, view):
        if principal_of(request) is None:
            raise exceptions.NotAuthenticated("Authentication credentials were not provided.")
        return True


class MethodAllowed(permissions.BasePermission):
    """405 before 403: the route and method are checked before the kind of principal."""

    def has_permission(self, request, view):
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            raise exceptions.MethodNotAllowed(request.method)
        return True


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
