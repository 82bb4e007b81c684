"""A real Celery worker on Redis runs routing and the quality check off the request path."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from city.celery import app as celery_app
from tasks.models import Task
from tests.conftest import IN_CI
from tests.factories import GOOD_OUTPUT, task_body

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker(postgres):
    """A worker process on its own queue, sharing the test database over PostgreSQL."""
    if not settings.REDIS_URL:
        if IN_CI:
            pytest.fail("CI must run the worker test with REDIS_URL set")
        pytest.skip("needs Redis: set REDIS_URL=redis://...")
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "city.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_QUEUE": queue,
        "SANDBOX_ROOT": str(settings.SANDBOX_ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "city",
            "worker",
            "-P",
            "solo",
            "-l",
            "info",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "ready." in line:
            break
    else:
        process.kill()
        pytest.fail("the worker did not start:\n" + "".join(lines))
    if process.poll() is not None:
        pytest.fail("the worker exited:\n" + "".join(lines))
    # Keep reading its output, or a full pipe would block the worker mid-job.
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()

    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager, conf.task_default_queue = False, queue
    try:
        yield process
    finally:
        conf.task_always_eager, conf.task_default_queue = saved
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        connection.close()


def wait_for(predicate, what: str, seconds: float = 30):
    """Poll the database with a deadline (never a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_it_routes_and_settles_a_task_on_a_real_worker(worker, alice, rex):
    submitted = alice.api.post("/api/v1/tasks", task_body(maxBudget=5000))
    assert submitted.status_code == 201
    # Not eager: the response is the task as committed, before any worker touched it.
    assert submitted.json()["agentId"] is None
    tid = submitted.json()["id"]

    wait_for(
        lambda: Task.objects.filter(pk=tid, agent=rex.agent, status="submitted").exists(),
        "the worker to route the task to rex",
    )
    sandbox = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    assert rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sandbox}).status_code == 200
    done = rex.api.post(
        f"/api/v1/tasks/{tid}/complete", {"output": GOOD_OUTPUT, "executionTimeMs": 900}
    )
    assert done.status_code == 200
    assert done.json()["status"] == "quality_check"

    task = wait_for(
        lambda: Task.objects.filter(pk=tid, status="completed").first(),
        "the worker's quality check to complete the task",
    )
    assert task.credits_charged == 2500
    assert (alice.balance().available, alice.balance().held) == (97_500, 0)
    assert rex.balance().available == 2250
    events = list(task.events.values_list("type", "actor"))
    assert ("route", "system") in events and ("pass", "system") in events
    # The sandbox is destroyed by the worker too, once the task is terminal.
    wait_for(lambda: not task.sandboxes.filter(status="live").exists(), "the sandbox cleanup job")
