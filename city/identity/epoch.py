"""The identity epoch: a number in the cache's Redis that moves whenever something a request's
authentication depends on changes, so that each process may keep the principals of live
secrets (``city.identity.authentication``) and know, in a round trip a request already makes,
whether what it keeps still holds.

It moves after the commit of: a secret revoked (``services.secrets_revoke``), an agent's status
set (``services.agents_set_status``), and any save or delete of a secret, an agent, an owner or
a user, other than a creation (nothing kept can name what did not exist) or a user's last login.
A new epoch starts at a random 63-bit number (when Redis lost the key: a flush, an eviction, a
restart), so a number never comes back to match what a process kept before. Without Redis (the
embedded defaults) there is no epoch and nothing is kept.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from city.api import throttling

KEY = "identity:epoch"


def name() -> str:
    """The epoch's key as the cache stores it."""
    return cache.make_and_validate_key(KEY)


def now() -> bytes | None:
    """The current epoch, started if Redis has none; None without Redis."""
    client = throttling.redis_client()
    if client is None:
        return None
    key = name()
    _, epoch = client.pipeline(transaction=False).set(key, _fresh(), nx=True).get(key).execute()
    return epoch


def move() -> None:
    """Move the epoch once the current transaction commits (at once outside one)."""
    client = throttling.redis_client()
    if client is None:
        return
    key = name()
    transaction.on_commit(
        lambda: client.pipeline(transaction=False).set(key, _fresh(), nx=True).incr(key).execute()
    )


def _fresh() -> int:
    return secrets.randbelow(2**62)


def _saved(sender, created=False, update_fields=None, **kwargs) -> None:
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    move()


def _deleted(sender, **kwargs) -> None:
    move()


def connect() -> None:
    """Move the epoch on the saves and deletes that matter (``IdentityConfig.ready``)."""
    from city.identity.models import Agent, ApiSecret, Owner

    for model in (ApiSecret, Agent, Owner, get_user_model()):
        label = model._meta.label
        post_save.connect(_saved, sender=model, dispatch_uid=f"identity-epoch-save-{label}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"identity-epoch-delete-{label}")
