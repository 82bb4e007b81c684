"""The checks every API view runs first, in the contract's order: credentials, then method.

The caller is ``request.auth``, set by whichever authentication class accepted the request; the
plumbing needs only its ``key`` (a stable name for rate limits and idempotency).
"""

from __future__ import annotations

from rest_framework import exceptions, permissions


class IsPrincipal(permissions.BasePermission):
    def has_permission(self, request, view):
        if request.auth is None:
            raise exceptions.NotAuthenticated("Authentication credentials were not provided.")
        return True


class MethodAllowed(permissions.BasePermission):
    """405 before 403: the route and method are checked before the kind of principal."""

    def has_permission(self, request, view):
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            raise exceptions.MethodNotAllowed(request.method)
        return True
