"""Real Celery workers on Redis, not eager: routing and the quality check run off the request path,
and a worker killed in the middle of a quality check loses neither the task nor any money."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from city.celery import app as celery_app
from tasks import jobs
from tasks.models import Sandbox, Task
from tasks.quality import HeuristicEvaluator, Verdict
from tests.actions import event_types, get_task, hand_in, start, submit
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ("completed", "failed", "refunded")


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, and the job under way is never acknowledged."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _start_worker(queue: str, pool: str, env: dict[str, str]) -> Worker:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "city",
            "worker",
            "-P",
            pool,
            "-c",
            "1",
            "-l",
            "info",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "city.settings",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_QUEUE": queue,
            "SANDBOX_ROOT": str(settings.SANDBOX_ROOT),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    lines: list[str] = []
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
    return Worker(process)


@pytest.fixture
def start_worker(postgres):
    """Starts worker processes on a queue of their own, sharing the test database over
    PostgreSQL; ``start_worker(pool=..., **env)`` adds settings of its own to one of them."""
    if not settings.REDIS_URL:
        if IN_CI:
            pytest.fail("CI must run the worker tests with REDIS_URL set")
        pytest.skip("needs Redis: set REDIS_URL=redis://...")
    queue = f"test-{uuid.uuid4().hex[:12]}"
    workers: list[Worker] = []

    def start_one(pool: str = "solo", **env: str) -> Worker:
        worker = _start_worker(queue, pool, env)
        workers.append(worker)
        return worker

    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager, conf.task_default_queue = False, queue
    try:
        yield start_one
    finally:
        conf.task_always_eager, conf.task_default_queue = saved
        for worker in workers:
            worker.stop()
        connection.close()
        _forget_queue(queue)


def _forget_queue(queue: str) -> None:
    """Drop what Redis keeps for a test's queue once its workers are gone, the job a killed worker
    never acknowledged included: an hour later any worker would put it back on the dead queue."""
    broker = redis.Redis.from_url(settings.REDIS_URL)
    for tag, raw in broker.hscan_iter("unacked"):
        _message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)
    broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@pytest.fixture
def worker(start_worker):
    """One worker, with the settings the test process has."""
    return start_worker()


def wait_for(predicate, what: str, seconds: float = 30):
    """Poll with a deadline (never a fixed sleep); what the predicate returned."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def settled(person, tid: str) -> dict | None:
    """The task as ``GET`` shows it once it is terminal; None before."""
    task = get_task(person, tid)
    return task if task["status"] in TERMINAL else None


def no_live_sandbox(tid: str) -> bool:
    return not Sandbox.objects.filter(task_id=tid, status=Sandbox.Status.LIVE).exists()


def credits_of(person) -> tuple[int, int]:
    body = person.api.get("/api/v1/credits").json()
    return body["available"], body["held"]


def test_it_takes_a_smart_routed_task_from_submit_to_completed_over_http(worker, alice, rex):
    submitted = submit(alice)
    # Not eager: the response is the task as the submit committed it, before any worker ran.
    assert (submitted["status"], submitted["agentId"]) == ("submitted", None)
    tid = submitted["id"]

    wait_for(lambda: get_task(alice, tid)["agentId"] == rex.id, "the worker to route it to rex")
    assert [task["id"] for task in rex.api.get("/api/v1/agent/tasks/submitted").json()] == [tid]
    start(rex, tid)
    done = hand_in(rex, tid)
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "quality_check"

    task = wait_for(lambda: settled(alice, tid), "the worker's quality check to settle it")
    assert (task["status"], task["creditsCharged"]) == ("completed", 2500)
    assert credits_of(alice) == (97_500, 0)
    assert rex.balance().available == 2250
    events = event_types(alice, tid)
    assert "route" in events and events[-1] == "pass", events
    # The sandbox is destroyed by the worker too, once the task is terminal.
    wait_for(lambda: no_live_sandbox(tid), "the sandbox cleanup job")


STARTED_FLAG = "STALLING_EVALUATOR_STARTED"


class StallingEvaluator:
    """The first quality check writes its process id to the file ``$STALLING_EVALUATOR_STARTED``
    names and never returns, until its process is killed; any later one is the heuristic's."""

    def score(self, task) -> Verdict:
        flag = Path(os.environ[STARTED_FLAG])
        if flag.exists():
            return HeuristicEvaluator().score(task)
        flag.write_text(str(os.getpid()))
        while True:
            time.sleep(60)


def _in_quality_check(alice, rex) -> str:
    """alice's task, hired to rex at 2500 and handed in; its id."""
    tid = submit(alice, agentId=rex.id)["id"]
    start(rex, tid)
    assert hand_in(rex, tid).json()["status"] == "quality_check"
    return tid


def _assert_paid_once(alice, rex, tid: str) -> None:
    task = wait_for(lambda: settled(alice, tid), "the task to be settled")
    assert (task["status"], task["creditsCharged"]) == ("completed", 2500)
    assert credits_of(alice) == (97_500, 0)
    assert rex.balance().available == 2250
    assert event_types(alice, tid).count("pass") == 1
    wait_for(lambda: no_live_sandbox(tid), "the sandbox cleanup job")


def test_it_settles_a_quality_check_whose_worker_was_killed_midway(
    start_worker, alice, rex, tmp_path
):
    flag = tmp_path / "evaluator-started"
    stalling = start_worker(
        QUALITY_EVALUATOR="tests.tasks.test_worker.StallingEvaluator", **{STARTED_FLAG: str(flag)}
    )
    tid = _in_quality_check(alice, rex)
    wait_for(flag.exists, "the worker to start the quality check")
    stalling.kill()

    # The kill lost the check: the task waits in quality_check, its budget held, nothing paid.
    assert get_task(alice, tid)["status"] == "quality_check"
    assert credits_of(alice) == (95_000, 5000)
    assert rex.balance().available == 0

    start_worker()  # a fresh worker, with the heuristic evaluator
    # Its job was never acknowledged, but Redis hands it out again only after the visibility
    # timeout (an hour). Before that, the sweep beat sends every 30 s runs a check stuck for
    # STUCK_QUALITY_CHECK again: make it that old, and send the sweep as beat would.
    stuck_since = timezone.now() - jobs.STUCK_QUALITY_CHECK - timedelta(seconds=1)
    Task.objects.filter(pk=tid).update(updated_at=stuck_since)
    jobs.sweep_timeouts.delay()

    _assert_paid_once(alice, rex, tid)


def test_it_runs_a_quality_check_again_when_its_pool_process_is_killed(
    start_worker, alice, rex, tmp_path
):
    flag = tmp_path / "evaluator-started"
    start_worker(
        pool="prefork",
        QUALITY_EVALUATOR="tests.tasks.test_worker.StallingEvaluator",
        **{STARTED_FLAG: str(flag)},
    )
    tid = _in_quality_check(alice, rex)
    pid = int(wait_for(lambda: flag.exists() and flag.read_text(), "the quality check to start"))
    os.kill(pid, signal.SIGKILL)

    # acks_late with reject_on_worker_lost: the worker puts the job back on its queue at once,
    # and a new pool process runs it (the evaluator stalls only the first time).
    _assert_paid_once(alice, rex, tid)
