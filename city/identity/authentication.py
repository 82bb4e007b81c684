"""DRF authentication for owner tokens and agent keys (``Authorization: Bearer …``)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from city.api import throttling
from city.api.prepared import Prepared
from city.api.throttling import seconds_left_in_window, window_count
from city.identity import epoch as identity_epoch
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


# Principals kept by each process, so that a request with a live secret needs no query: one is
# used only if it was kept at the identity epoch this request reads (``city.identity.epoch``),
# in the round trip it makes anyway to count itself against the rate limit. What is read from
# the database is kept at the epoch read *before* the read, so a change that commits in between
# leaves it stale at once. Without Redis nothing is kept. Kept objects are only ever read.
KEPT_AT_MOST = 10_000
KEPT_SECONDS = 300.0
_kept: dict[str, tuple[bytes, float, ApiSecret]] = {}


def principals_forget() -> None:
    """Drop every principal this process keeps (tests start from none)."""
    _kept.clear()


def _principal_of(record: ApiSecret):
    if record.kind == ApiSecret.Kind.AGENT:
        return AgentUser(record.agent), Principal(agent=record.agent)
    return record.owner.user, Principal(owner=record.owner)


def _last_used(record: ApiSecret) -> None:
    """A write per request would make every read a write; a minute's resolution is enough."""
    now = timezone.now()
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        ApiSecret.objects.filter(pk=record.pk).update(last_used_at=now)
        record.last_used_at = now


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
        hashed = secret_hash(secret)
        kept = _kept.get(hashed)
        epoch = None
        if kept is not None:
            kept_epoch, kept_at, record = kept
            user, principal = _principal_of(record)
            counted = throttling.window_count_and_get(
                throttling.rate_key(principal.key), identity_epoch.KEY
            )
            if counted is not None:
                count, epoch = counted
                # Counted against the kept principal's limit: a secret always names the same
                # principal, so the count stands whatever the database says next.
                setattr(request, throttling.COUNTED, count)
                fresh = time.monotonic() - kept_at < KEPT_SECONDS
                if epoch is not None and epoch == kept_epoch and fresh:
                    _last_used(record)
                    return user, principal
            _kept.pop(hashed, None)
        if epoch is None:
            epoch = identity_epoch.now()
        record = _LIVE_SECRET.first(secret_hash=hashed)
        if record is None:
            # Only failures count against the address, so a guesser is slowed down while a
            # valid secret from the same address (a shared NAT, an office) is never refused.
            failures = window_count(_failure_key(request))
            if failures > settings.AUTH_FAILURES_PER_MINUTE:
                raise exceptions.Throttled(wait=seconds_left_in_window())
            raise exceptions.AuthenticationFailed(
                "The secret is unknown or revoked.", code="invalid_secret"
            )
        _last_used(record)
        if epoch is not None:
            if len(_kept) >= KEPT_AT_MOST:
                _kept.clear()
            _kept[hashed] = (epoch, time.monotonic(), record)
        return _principal_of(record)

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
