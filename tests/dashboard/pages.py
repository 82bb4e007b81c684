"""What the dashboard's page tests share: a browser session logged in as an owner."""

from __future__ import annotations

from django.test import Client


def logged_in(person, *, csrf: bool = False) -> Client:
    """A test client logged in as ``person`` (a ``tests.factories.Person``); with ``csrf``, it
    enforces CSRF tokens as a browser's session would."""
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(person.owner.user)
    return client
