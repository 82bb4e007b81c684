"""``manage.py run_sweeps``: beat's schedule run in one process, as ``make run`` does beside the
server on the embedded defaults (no broker, no worker, no beat)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app, shared_task
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from tasks.management.commands.run_sweeps import beat_jobs
from tasks.models import Task

ROOT = Path(__file__).resolve().parents[2]

# What the test jobs did, in order; each test starts it empty.
RAN: list[str] = []


@pytest.fixture(autouse=True)
def _no_runs_yet():
    RAN.clear()


@shared_task(name="tests.run_sweeps.record")
def record(label: str = "record") -> str:
    RAN.append(label)
    return label


@shared_task(name="tests.run_sweeps.broken")
def broken() -> None:
    RAN.append("broken")
    raise ConnectionError("the database went away")


@shared_task(name="tests.run_sweeps.stop")
def stop(signum: int = signal.SIGTERM, after: int = 1) -> None:
    """Sends ``signum`` to this very process on its ``after``-th run, then finishes its work."""
    RAN.append("stop")
    if RAN.count("stop") >= after:
        os.kill(os.getpid(), signum)
    RAN.append("stop finished")


@pytest.fixture
def schedule(monkeypatch):
    """Replaces beat's schedule with test jobs: ``schedule(name=(task, args), ...)``."""

    def replace(**entries: tuple[str, tuple]) -> None:
        beat = {
            name: {"task": task, "schedule": 3600.0, "args": args}
            for name, (task, args) in entries.items()
        }
        monkeypatch.setitem(current_app.conf, "beat_schedule", beat)

    return replace


def overdue(tid: str) -> None:
    """The task started longer ago than the execution timeout allows."""
    long_ago = timezone.now() - timedelta(seconds=settings.EXECUTION_TIMEOUT_SECONDS + 1)
    Task.objects.filter(pk=tid).update(started_at=long_ago)


def assert_timed_out(tid: str, alice) -> None:
    task = Task.objects.get(pk=tid)
    assert (task.status, task.failure_reason) == ("failed", "timeout")
    assert task.hold.status == "released"
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)


# Once


def test_it_runs_beats_own_schedule():
    assert {(job.name, job.task.name) for job in beat_jobs()} == {
        (name, entry["task"]) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }


def test_it_fails_an_overdue_task_and_returns_its_hold_once(executing, alice):
    tid = executing["id"]
    overdue(tid)
    call_command("run_sweeps", "--once")
    assert_timed_out(tid, alice)


def test_it_runs_every_job_once_with_its_arguments(schedule):
    schedule(first=("tests.run_sweeps.record", ("a",)), second=("tests.run_sweeps.record", ("b",)))
    call_command("run_sweeps", "--once")
    assert RAN == ["a", "b"]


def test_it_logs_a_failing_job_runs_the_rest_and_exits_non_zero(schedule, caplog):
    schedule(first=("tests.run_sweeps.broken", ()), second=("tests.run_sweeps.record", ()))
    with pytest.raises(CommandError, match="1 of 2 jobs failed: first"):
        call_command("run_sweeps", "--once")
    assert RAN == ["broken", "record"]
    failure = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "first (tests.run_sweeps.broken) failed" in failure.getMessage()
    assert failure.exc_info[0] is ConnectionError


def test_it_refuses_a_schedule_naming_an_unknown_task(schedule):
    schedule(lost=("tests.run_sweeps.no_such_job", ()))
    with pytest.raises(CommandError, match=r"'lost' names 'tests\.run_sweeps\.no_such_job'"):
        call_command("run_sweeps", "--once")


def test_it_refuses_an_interval_that_is_not_positive():
    with pytest.raises(CommandError, match="--interval"):
        call_command("run_sweeps", "--interval", "0")


# The loop


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_loop_after_the_job_under_way(schedule, signum):
    before = signal.getsignal(signum)
    schedule(
        first=("tests.run_sweeps.stop", (signum,)),
        second=("tests.run_sweeps.record", ("second",)),
    )
    call_command("run_sweeps", "--interval", "0.01")
    # The job that was signalled finished its work; no other started after it.
    assert RAN == ["stop", "stop finished"]
    assert signal.getsignal(signum) == before


def test_the_loop_goes_on_after_a_job_fails(schedule):
    schedule(
        failing=("tests.run_sweeps.broken", ()),
        stopping=("tests.run_sweeps.stop", (signal.SIGTERM, 3)),
    )
    call_command("run_sweeps", "--interval", "0.01")
    assert RAN.count("broken") >= 3


def test_a_job_runs_again_on_its_own_schedule(monkeypatch):
    beat = {
        "often": {"task": "tests.run_sweeps.record", "schedule": 0.01, "args": ("often",)},
        "hourly": {"task": "tests.run_sweeps.record", "schedule": 3600.0, "args": ("hourly",)},
        "stopping": {
            "task": "tests.run_sweeps.stop",
            "schedule": 0.01,
            "args": (signal.SIGTERM, 3),
        },
    }
    monkeypatch.setitem(current_app.conf, "beat_schedule", beat)
    call_command("run_sweeps")
    # Every job runs when the loop starts; then only those that fall due.
    assert RAN.count("often") >= 3
    assert RAN.count("hourly") == 1


# A real process, as make run starts it


def test_a_run_sweeps_process_times_out_a_stuck_task_and_exits_on_sigterm(
    postgres, executing, alice
):
    tid = executing["id"]
    overdue(tid)
    db = connection.settings_dict
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_sweeps"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "city.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": "",  # the embedded default: Celery eager, in this process
            "SANDBOX_ROOT": str(settings.SANDBOX_ROOT),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while Task.objects.get(pk=tid).status != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "run_sweeps: stopped by SIGTERM" in output
    assert_timed_out(tid, alice)
