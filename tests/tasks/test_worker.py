"""Real Celery workers on Redis, not eager: routing and the quality check run off the request path,
and a worker killed in the middle of a quality check loses neither the task nor any money."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from tasks import jobs
from tasks.models import Sandbox, Task
from tasks.quality import HeuristicEvaluator, Verdict
from tests.actions import event_types, get_task, hand_in, start, submit
from tests.processes import wait_for

TERMINAL = ("completed", "failed", "refunded")


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


def worker_sessions(name: str) -> list:
    """When each PostgreSQL session still open under application name ``name`` started."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT backend_start FROM pg_stat_activity WHERE application_name = %s", [name]
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_worker_keeps_its_database_connection_from_job_to_job(start_worker, alice, rex):
    # A prefork worker, as the Procfile runs it: Celery's Django fixup closes the connection
    # pool of a prefork child around every job unless CELERY_DB_REUSE_MAX says otherwise.
    name = f"city-test-worker-{os.getpid()}"
    start_worker("prefork", PGAPPNAME=name)
    tid = submit(alice, agentId=rex.id)["id"]
    start(rex, tid)
    hand_in(rex, tid)
    wait_for(lambda: settled(alice, tid), "the first quality check")
    wait_for(lambda: no_live_sandbox(tid), "the first cleanup")
    first = worker_sessions(name)

    tids = [submit(alice, agentId=rex.id)["id"] for _ in range(4)]
    for tid in tids:
        start(rex, tid)
        hand_in(rex, tid)
    for tid in tids:
        wait_for(lambda tid=tid: settled(alice, tid), "the quality checks")
        wait_for(lambda tid=tid: no_live_sandbox(tid), "the cleanups")

    # Eight more jobs (a quality check and a cleanup per task) on the sessions of the first.
    assert first and worker_sessions(name) == first
