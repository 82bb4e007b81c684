from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection

from tests.actions import get_task, hand_in_and_get, start, submit
from tests.factories import make_agent, make_owner

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Fixtures that start real processes beside the test: workers, the ASGI server, Chromium.
pytest_plugins = ["tests.processes", "tests.browser"]


def pytest_configure(config):
    config.addinivalue_line("markers", "ledger_unchecked: the test breaks the ledger on purpose")


@pytest.fixture(autouse=True)
def ledger_audited(request):
    """Every test that touches the database ends with ``manage.py check_ledger`` passing."""
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
    } & set(request.fixturenames)
    if not uses_db or request.node.get_closest_marker("ledger_unchecked"):
        yield
        return
    # Requested here so that the database outlives this fixture's teardown.
    request.getfixturevalue("_django_db_helper")
    yield
    call_command("check_ledger", stdout=open(os.devnull, "w"))


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit and auth-failure counters live in the cache, and each process keeps the
    principals of secrets it has seen; no test inherits another's."""
    from django.core.cache import cache

    from city.identity.authentication import principals_forget

    cache.clear()
    principals_forget()
    yield
    cache.clear()
    principals_forget()


@pytest.fixture
def redis_cache(settings, request):
    """Django's cache on Redis, as in production (the suite's own is local memory), under a key
    prefix of this test's own: its counters and epoch start empty and touch nothing else (the
    cache's clear() would flush the whole Redis database). Skipped without Redis, failed in CI."""
    from django.core.cache import caches

    from tests.processes import needs_redis

    needs_redis(f"{request.node.name} with the cache on Redis")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "KEY_PREFIX": f"city-test-{uuid.uuid4().hex}",
        }
    }
    return caches["default"]


@pytest.fixture
def redis_pipelines(redis_cache, monkeypatch) -> list[int]:
    """How many commands each redis-py pipeline sent, in order: one entry per round trip."""
    pipeline = type(redis_cache._cache.get_client("x", write=True).pipeline())
    sent: list[int] = []
    execute = pipeline.execute
    monkeypatch.setattr(
        pipeline,
        "execute",
        lambda pipe, *a, **k: sent.append(len(pipe.command_stack)) or execute(pipe, *a, **k),
    )
    return sent


@pytest.fixture
def clock(monkeypatch):
    """The limits' clock, pinned ten seconds into a minute: counters are per wall-clock minute,
    and a minute ending mid-test would reset them (a test that counts to a limit and then checks
    it would pass or fail by the second it started in)."""
    from city.api import throttling

    clock = SimpleNamespace(now=1_699_999_990.0)
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


@pytest.fixture(autouse=True)
def _sandbox_root(settings, tmp_path):
    settings.SANDBOX_ROOT = tmp_path / "sandboxes"


@pytest.fixture
def postgres(db):
    """Marks a test that needs real row locks: skipped without PostgreSQL, failed in CI."""
    if connection.vendor != "postgresql":
        if IN_CI:
            pytest.fail("CI must run this test on PostgreSQL (set DATABASE_URL)")
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture
def alice(db):
    return make_owner("alice@example.com", credits=100_000)


@pytest.fixture
def bob(db):
    return make_owner("bob@example.com")


@pytest.fixture
def charlie(db):
    return make_owner("charlie@example.com", credits=100_000)


@pytest.fixture
def rex(bob):
    """bob's agent: code_review at 2500, bug_fix at 4000."""
    return make_agent(bob, "rex", {"code_review": 2500, "bug_fix": 4000})


@pytest.fixture
def zed(charlie):
    """charlie's agent, unrelated to alice's tasks: code_review at 3000."""
    return make_agent(charlie, "zed", {"code_review": 3000})


@pytest.fixture
def linguist(bob, charlie):
    """bob's only translator, busy at its limit of one executing task (charlie's): a
    translation task submitted now waits in routing for it."""
    busy = make_agent(bob, "linguist", {"translation": 1500}, max_concurrent=1)
    start(busy, submit(charlie, taskType="translation", agentId=busy.id)["id"])
    return busy


@pytest.fixture
def reviewer(db):
    return make_owner("reviewer@example.com", reviewer=True)


@pytest.fixture
def submitted(alice, rex):
    """alice's code_review task, direct-hired to rex at 2500 with a 5000 budget."""
    return submit(alice, agentId=rex.id)


@pytest.fixture
def executing(submitted, rex):
    """The submitted task, started by rex; with the id of its sandbox."""
    sid = start(rex, submitted["id"])
    return {**get_task(rex, submitted["id"]), "sandboxId": sid}


@pytest.fixture
def completed(executing, rex):
    """The executing task, handed in by rex with a good output and settled by the quality check."""
    task = hand_in_and_get(rex, executing["id"])
    assert task["status"] == "completed", task
    return task


def pytest_collection_modifyitems(items):
    # Every database test commits for real, as the server does: on_commit jobs (routing, the
    # quality check, sandbox cleanup) run when a request's transaction commits, and row locks
    # behave as in production. A test may still ask for plain ``db`` with its own marker.
    for item in items:
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(transaction=True))
