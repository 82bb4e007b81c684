"""``Idempotency-Key`` on POST: the first response is stored and replayed to retries.

A key is claimed by inserting its row before the request runs (committed at once, outside the
request's own transaction), so a concurrent retry finds the claim and gets ``409
idempotency_key_in_use`` instead of running twice. The response fills the row afterwards; a 5xx
deletes the claim so that a retry runs again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from city.api.errors import Conflict, Invalid
from city.api.models import IdempotencyKey

# A claim whose request never finished (the process died) stops blocking retries after this.
STALE_CLAIM = timedelta(minutes=5)


def fingerprint(data) -> str:
    # ensure_ascii: a lone surrogate in a body is escaped, not an encoding error (the body is
    # refused by validation after this, but the key is checked first).
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(
    *, principal: str, key: str, method: str, path: str, data
) -> IdempotencyKey | HttpResponse:
    """Claim the key for this request, or return the stored response to replay."""
    if len(key) > 255:
        raise Invalid(
            "Idempotency-Key must be at most 255 characters.",
            code="idempotency_key_too_long",
            param="Idempotency-Key",
        )
    print_ = fingerprint(data)
    scope = {"principal": principal, "key": key, "method": method, "path": path}
    # Two rounds: a row found expired or abandoned is deleted, and the claim tried once more.
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(**scope, fingerprint=print_)
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(**scope).first()
        if existing is None:
            continue  # deleted between our insert and this read
        if _outlived(existing):
            IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            continue
        return _answer_retry(existing, print_)
    raise Conflict(
        "A request with this Idempotency-Key is still in progress.",
        code="idempotency_key_in_use",
    )


def _outlived(record: IdempotencyKey) -> bool:
    """Past its 24 hours, or a claim whose request never finished (its process died)."""
    age = timezone.now() - record.created_at
    if age >= timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS):
        return True
    return record.response_status is None and age >= STALE_CLAIM


def _answer_retry(existing: IdempotencyKey, print_: str) -> HttpResponse:
    if existing.fingerprint != print_:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
        )
    if existing.response_status is None:
        raise Conflict(
            "A request with this Idempotency-Key is still in progress.",
            code="idempotency_key_in_use",
        )
    response = HttpResponse(
        bytes(existing.response_body),
        status=existing.response_status,
        content_type=existing.response_content_type or "application/json",
    )
    response["Idempotent-Replayed"] = "true"
    return response


def finish(record: IdempotencyKey, response) -> None:
    if response.status_code >= 500:
        IdempotencyKey.objects.filter(pk=record.pk).delete()
        return
    if hasattr(response, "render") and not response.is_rendered:
        response.render()
    IdempotencyKey.objects.filter(pk=record.pk).update(
        response_status=response.status_code,
        response_body=bytes(response.content),
        response_content_type=response.get("Content-Type", "application/json"),
    )


def purge_expired() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
