"""Opaque public ids and secrets."""

from __future__ import annotations

import hashlib
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def random_id(prefix: str = "", length: int = 24) -> str:
    """A random, non-sequential public id such as ``ag_k3j9...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_secret(prefix: str) -> str:
    """A secret with 256 bits of entropy, e.g. ``own_...`` or ``agk_...``."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    # Secrets carry 256 bits of entropy, so a fast hash is enough; lookups go through a unique
    # index on the hash, never a comparison of the secret itself, so timing reveals nothing.
    return hashlib.sha256(secret.encode()).hexdigest()
