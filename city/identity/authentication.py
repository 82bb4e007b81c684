"""DRF authentication for owner tokens and agent keys (``Authorization: Bearer …``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from city.api.prepared import Prepared
from city.api.throttling import seconds_left_in_window, window_count
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
    """The client's address: the socket's peer, or with ``TRUSTED_PROXY_COUNT`` = n > 0 proxies
    in front, the address the outermost trusted proxy saw (n-th from the right of
    ``X-Forwarded-For``). Entries left of it are the client's own word and are never trusted."""
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if hops:
            return hops[-min(trusted, len(hops))]
    return request.META.get("REMOTE_ADDR") or "unknown"


def _failure_key(request) -> str:
    return f"authfail:{client_address(request)}"


# Every authenticated request runs this lookup: compiled once (city.api.prepared).
_LIVE_SECRET = Prepared(
    lambda secret_hash: (
        ApiSecret.objects.select_related("owner__user", "agent__operator")
        .filter(secret_hash=secret_hash, revoked_at__isnull=True)
        .order_by("pk")[:1]
    )
)


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
        record = _LIVE_SECRET.first(secret_hash=secret_hash(secret))
        if record is None:
            # Only failures count against the address, so a guesser is slowed down while a
            # valid secret from the same address (a shared NAT, an office) is never refused.
            failures = window_count(_failure_key(request))
            if failures > settings.AUTH_FAILURES_PER_MINUTE:
                raise exceptions.Throttled(wait=seconds_left_in_window())
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
