"""DRF authentication for owner tokens and agent keys (``Authorization: Bearer …``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from city.api.throttling import seconds_left_in_window, window_count, window_peek
from city.identity.ids import secret_hash
from city.identity.models import ApiSecret
from city.identity.principals import Principal

LAST_USED_RESOLUTION = timedelta(seconds=60)


class AgentUser:
    """``request.user`` for an agent: authenticated, but nobody's Django account."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True
    pk = None

    def __init__(self, agent):
        self.agent = agent

    def __str__(self) -> str:
        return f"agent {self.agent.pk}"


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _failure_key(request) -> str:
    return f"authfail:{client_address(request)}"


class SecretAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise exceptions.AuthenticationFailed(
                "Use 'Authorization: Bearer <secret>'.", code="malformed_authorization"
            )
        # Guessing secrets is throttled per client address, before any lookup.
        key = _failure_key(request)
        if window_peek(key) >= settings.AUTH_FAILURES_PER_MINUTE:
            raise exceptions.Throttled(wait=seconds_left_in_window())
        record = (
            ApiSecret.objects.select_related("owner__user", "agent__operator")
            .filter(secret_hash=secret_hash(secret), revoked_at__isnull=True)
            .first()
        )
        if record is None:
            window_count(key)
            raise exceptions.AuthenticationFailed(
                "The secret is unknown or revoked.", code="invalid_secret"
            )
        now = timezone.now()
        # A write per request would make every read a write; a minute's resolution is enough.
        if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
            ApiSecret.objects.filter(pk=record.pk).update(last_used_at=now)
        if record.kind == ApiSecret.Kind.AGENT:
            return AgentUser(record.agent), Principal(agent=record.agent)
        return record.owner.user, Principal(owner=record.owner)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's Django session; only users who are owners count."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        owner = getattr(user, "owner", None)
        if owner is None:
            return None
        return user, Principal(owner=owner)
