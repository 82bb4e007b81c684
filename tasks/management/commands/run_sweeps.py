"""Celery beat's schedule, run in this process: the sweeps without a broker, a worker or beat.

On the embedded defaults (no ``REDIS_URL``) nothing runs beat's jobs, so ``make run`` starts this
loop beside the web server: a stuck task times out and its hold goes back, as in production.
Each job of ``CELERY_BEAT_SCHEDULE`` runs when this starts and then on its own schedule
(``--interval`` runs them all every N seconds instead); ``--once`` runs each once and exits, for
cron or a test.

A job is the same Celery task beat would send to a worker, called here: whatever it enqueues
goes where Celery sends it (in-process when eager, else to the broker). A job that fails is
logged and the loop goes on; its next run is the retry. SIGTERM or SIGINT stops the loop once
the job under way has finished, never in the middle of one.
"""

from __future__ import annotations

import logging
import signal
import time
from argparse import ArgumentTypeError
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module
from types import FrameType

from celery import Celery, Task, current_app
from celery.schedules import BaseSchedule, maybe_schedule, schedule
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The longest a wait goes without looking whether it was asked to stop: a signal handler cannot
# cut a sleep short by itself (PEP 475 resumes it), so waits are taken in short steps, as
# healthchecks' sendalerts does.
WAKE_SECONDS = 0.25


@dataclass
class Job:
    """One entry of the beat schedule: its task, arguments and schedule, and its last run."""

    name: str
    task: Task
    schedule: BaseSchedule
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    last_run_at: datetime | None = None

    def due_in(self) -> float:
        """Seconds until the job is due; 0 when it is (it is due before its first run)."""
        if self.last_run_at is None:
            return 0.0
        due, next_check = self.schedule.is_due(self.last_run_at)
        return 0.0 if due else max(0.0, next_check)

    def run(self) -> bool:
        """Run the job once; False if it raised (the error is logged, not raised)."""
        self.last_run_at = self.schedule.now()
        try:
            result = self.task(*self.args, **self.kwargs)
        except Exception:
            logger.exception("%s (%s) failed", self.name, self.task.name)
            return False
        # A sweep that found nothing to do says so only at DEBUG: every 30 s is noise.
        logger.log(logging.INFO if result else logging.DEBUG, "%s returned %r", self.name, result)
        return True


def _task(app: Celery, name: str) -> Task | None:
    """The registered task called ``name``, importing the module its name says it is in.

    A worker finds every app's jobs.py through Celery's autodiscovery, which would also set
    Django up a second time (logging configured anew) and run its checks; a task's default name
    is its module and function, which is enough here.
    """
    if name not in app.tasks:
        with suppress(ImportError):
            import_module(name.rpartition(".")[0])
    return app.tasks.get(name)


def beat_jobs(*, interval: float | None = None) -> list[Job]:
    """The jobs of the Celery app's beat schedule, each on its schedule or every ``interval``."""
    app = current_app
    jobs = []
    for name, entry in app.conf.beat_schedule.items():
        task = _task(app, entry["task"])
        if task is None:
            raise CommandError(
                f"the beat schedule's {name!r} names {entry['task']!r}, which is no known task"
            )
        every = (
            schedule(timedelta(seconds=interval), app=app)
            if interval is not None
            else maybe_schedule(entry["schedule"], app=app)
        )
        jobs.append(
            Job(name, task, every, tuple(entry.get("args", ())), dict(entry.get("kwargs", {})))
        )
    if not jobs:
        raise CommandError("the beat schedule (CELERY_BEAT_SCHEDULE) is empty: nothing to run")
    return jobs


class StopSignals:
    """While entered, SIGTERM and SIGINT ask the loop to stop instead of ending the process.

    The handler only sets a flag: raising from it would abandon a sweep between two tasks, and
    logging from it could re-enter a handler's lock. The previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._request)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _request(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less once a stop is requested."""
        deadline = time.monotonic() + seconds
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, WAKE_SECONDS))


def _positive_seconds(raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:  # also refuses nan
        raise ArgumentTypeError(f"{raw!r} is not a number of seconds above 0")
    return seconds


class Command(BaseCommand):
    help = (
        "Run the jobs of Celery beat's schedule (the timeout sweep, the idempotency-key purge) "
        "in this process, in a loop until SIGTERM or SIGINT; --once runs each job once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--once",
            action="store_true",
            help="run every job once and exit; exit 1 if any failed (for cron and tests)",
        )
        mode.add_argument(
            "--interval",
            type=_positive_seconds,
            metavar="SECONDS",
            help="run every job every SECONDS instead of on its own schedule",
        )

    def handle(self, *args, once: bool, interval: float | None, **options) -> None:
        jobs = beat_jobs(interval=interval)
        if once:
            failed = [job.name for job in jobs if not job.run()]
            if failed:
                raise CommandError(f"{len(failed)} of {len(jobs)} jobs failed: {', '.join(failed)}")
            return
        with StopSignals() as stop:
            logger.info(
                "run_sweeps: %s; SIGTERM or Ctrl-C stops",
                "; ".join(f"{job.name} {job.schedule!r}" for job in jobs),
            )
            self.loop(jobs, stop)
            logger.info("run_sweeps: stopped by %s", stop.received.name)

    def loop(self, jobs: list[Job], stop: StopSignals) -> None:
        while not stop.requested:
            for job in jobs:
                if stop.requested:
                    return
                if job.due_in() == 0:
                    job.run()
            # As a worker does after each task: no connection is held across a long wait, and
            # one broken by a failed job (the database restarted) is replaced.
            close_old_connections()
            stop.wait(min(job.due_in() for job in jobs))
