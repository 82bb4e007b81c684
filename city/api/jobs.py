from __future__ import annotations

from celery import shared_task

from city.api import idempotency


@shared_task
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired()
