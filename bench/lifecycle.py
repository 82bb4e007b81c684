"""Tasks run to ``completed`` through real Celery workers, against the submit rate of the same run.

Two phases over HTTP, with the same client and the same concurrency (``--concurrency`` closed-loop
pipelines, pipeline ``p`` acting as owner ``p`` and as the agent that owner hires):

- **submit**: each pipeline submits direct hires (``POST /api/v1/tasks``) back to back;
- **lifecycle**: each pipeline runs one task at a time to completion as its owner and agent
  would: submit (a direct hire), provision a sandbox, mark it executing in that sandbox,
  complete with a good ``code_review`` output (a finding on line 1 of the code it was given),
  then wait until the task is ``completed``: the quality check runs on a Celery worker, which
  captures the hold and pays the agent. The wait follows the owner's ``GET /api/v1/stream``
  (opened before the phase, one per owner) for the task's ``status`` event; ``--wait poll``
  instead reads ``GET /api/v1/tasks/{id}`` every ``--poll-interval`` (0.05 s).

A phase counts what finished inside its ``--seconds`` window (a task when it was seen
``completed``); what is in flight at the end is waited for and checked, not counted. Any
refused request, a task that failed, or one not completed within 60 s is an error. Both phases
run after an untimed warm-up of their own kind.

The processes are the ``Procfile``'s lines exactly, only the environment substituted: ``web``
(``WEB_CONCURRENCY``, 2 by default) and ``worker`` (one process, ``WORKER_CONCURRENCY=2``: two
pool processes, so two quality checks at once), with ``DEBUG`` off, on PostgreSQL and Redis, a
``CELERY_QUEUE`` and a ``STREAM_REDIS_CHANNEL`` of the run's own so that no other worker or
server on this Redis takes its jobs or its events. No ``beat``: nothing here times out.

The final line is the figure:

    lifecycle: 12.7 tasks/s completed = 17.6% of the submit rate 71.9/s (two workers, 0 errors)

Before it, where the time went: each HTTP step's latency (p50/mean), the quality check's time
from the ``complete`` event to the ``pass`` event (the job's queueing, the job and the commits),
the jobs' own run time (Celery's ``succeeded in`` in the worker's log), and, per counted item,
the CPU each process group used over the timed window (from ``/proc``): this client, the web
processes, the worker and its pool, PostgreSQL's backends of this database, backends that exited
meanwhile (reaped by the postmaster: any database's, so an upper bound), Redis, and the whole
machine with its busy cores (what the others on it took shows as the difference), and the
PostgreSQL sessions opened per item (``pg_stat_database.sessions``).

With ``--ceiling`` it first measures, on the same database and with as many pgbench clients as
pipelines, what the database alone allows for that ratio (``bench/ceiling``: a completed task's
SQL against a submit's, statement by statement as City sends them), and prints it before the
figure with the run's ratio as a share of it.

    bench/lifecycle [--seconds 15] [--concurrency 8] [--wait stream|poll] [--ceiling] [--json]

Exit status: 0 when no error happened and ``check_ledger`` passed; 1 if not; 2 if it refused to
run (no PostgreSQL or Redis here, or a database whose name does not contain ``bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_ceiling
from api_ceiling import BUDGET, django_setup, ledger_check, migrate, people, server_start
from ceiling import measure as ceiling_measure
from ceiling import tool_check as ceiling_tool_check
from ledger_throughput import Refused, cpu_model, server_params, services_ready

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/city_bench_lifecycle"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SERVER_LOG = ROOT / "var" / "bench-lifecycle-server.log"
WORKER_LOG = ROOT / "var" / "bench-lifecycle-worker-{n}.log"
SETTLE_DEADLINE = 60.0  # seconds a handed-in task may take to be completed
TERMINAL = ("completed", "failed", "refunded")
INPUT = {"description": "Review this snippet", "code": "x = 1"}
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/lifecycle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15, help="per timed phase")
    parser.add_argument("--warmup", type=float, default=2, help="untimed, before each phase")
    parser.add_argument("--concurrency", type=int, default=8, help="pipelines (and owners)")
    parser.add_argument("--wait", choices=("stream", "poll"), default="stream")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds, --wait poll")
    parser.add_argument("--web-workers", type=int, help="WEB_CONCURRENCY (default: the Procfile's)")
    parser.add_argument("--worker-processes", type=int, default=1, help="worker lines started")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="WORKER_CONCURRENCY")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="first measure the database's own bound on the ratio (bench/ceiling), in this run",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300 or not 0 <= args.warmup <= 60:
        parser.error("--seconds is 1..300 and --warmup 0..60")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency is 1..256")
    if not 1 <= args.worker_processes <= 8 or not 1 <= args.worker_concurrency <= 16:
        parser.error("--worker-processes is 1..8 and --worker-concurrency 1..16")
    if not 0.005 <= args.poll_interval <= 5:
        parser.error("--poll-interval is 0.005..5 seconds")
    return args


# The processes: the Procfile's lines, as honcho would run them.


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.removeprefix(f"{name}:").strip()
    raise Refused(f"the Procfile has no {name!r} line")


def workers_start(args) -> list[subprocess.Popen]:
    """``--worker-processes`` of the Procfile's worker line, each with ``WORKER_CONCURRENCY``;
    ready once each has logged that it is."""
    command = procfile_line("worker")
    env = {
        **os.environ,
        "WORKER_CONCURRENCY": str(args.worker_concurrency),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    processes = []
    for n in range(args.worker_processes):
        log = Path(str(WORKER_LOG).format(n=n))
        log.parent.mkdir(exist_ok=True)
        with log.open("w") as out:
            processes.append(
                subprocess.Popen(
                    ["sh", "-c", f"exec {command}"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + 60
    for n, process in enumerate(processes):
        log = Path(str(WORKER_LOG).format(n=n))
        while " ready." not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                processes_stop(processes)
                raise Refused(f"the worker did not start: see {log}")
            time.sleep(0.2)
    return processes


def processes_stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM (a worker's warm shutdown finishes its jobs), SIGKILL after 20 s."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# Where the CPU goes: /proc, per process group, sampled at the edges of a timed phase.

TICK = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        one = todo.pop()
        pids.append(one)
        try:
            todo += [int(p) for p in Path(f"/proc/{one}/task/{one}/children").read_text().split()]
        except OSError:
            pass
    return pids


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _reaped_cpu_of(pid: int) -> float:
    """CPU seconds of a process's children that exited and were waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / TICK  # cutime + cstime


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _postgres_backends(database: str) -> list[int]:
    """This database's backends (their title names it): the server's work for this run."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                pids.append(int(entry.name))
    return pids


def _by_name(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, every core."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / TICK, total / TICK


@dataclass
class Groups:
    web: int
    workers: list[int]
    database: str
    logs: list[Path]  # the workers', whose size at each sample bounds the phase's jobs
    stats: object  # a psycopg connection of its own, for pg_stat_database

    postmaster: int | None = None

    def sample(self) -> dict:
        backends = _postgres_backends(self.database)
        if self.postmaster is None and backends:
            self.postmaster = _parent_of(backends[0])
        pids = {
            "web": _tree(self.web),
            "worker": [p for w in self.workers for p in _tree(w)],
            "postgres": backends,
            "redis": _by_name("redis-server"),
        }
        busy, total = _machine()
        groups = {g: {p: _cpu_of(p) for p in ps} for g, ps in pids.items()}
        # Backends that exited meanwhile (a worker reconnecting per job): the postmaster reaps
        # them and their CPU time adds up there, whatever their database: an upper bound.
        groups["pg-exited"] = {self.postmaster: _reaped_cpu_of(self.postmaster or 0)}
        return {
            "groups": groups,
            "client": time.process_time(),
            "machine": (busy, total),
            "logs": [log.stat().st_size for log in self.logs],
            # Sessions ever opened on this database: a worker that reconnects per job shows here
            # (PostgreSQL flushes the counter within a second or so).
            "sessions": self.stats.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()[0],
        }

    @staticmethod
    def used(before: dict, after: dict) -> dict:
        """CPU seconds each group used in between; a process new since ``before`` counts whole
        (a pool connection opened under load)."""
        out = {"client": after["client"] - before["client"]}
        for group, now in after["groups"].items():
            then = before["groups"].get(group, {})
            out[group] = sum(max(0.0, cpu - then.get(pid, 0.0)) for pid, cpu in now.items())
        busy = after["machine"][0] - before["machine"][0]
        total = after["machine"][1] - before["machine"][1]
        out["machine"] = busy
        out["sessions"] = after["sessions"] - before["sessions"]
        out["machine_cores"] = total and busy / total * (os.cpu_count() or 1)
        return out


# The client: asyncio + httpx, one pipeline per owner.


@dataclass
class Tally:
    done: int = 0  # counted: finished inside the window
    finished: int = 0  # counted or not
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)  # seconds, of counted items
    steps: dict[str, list[float]] = field(default_factory=dict)  # seconds, of counted tasks
    task_ids: list[str] = field(default_factory=list)  # counted lifecycle tasks

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.messages) < 5:
            self.messages.append(message)


class Failed(Exception):
    pass


@dataclass
class People:
    tokens: list[str]  # an owner's per pipeline
    agent_ids: list[str]
    agent_keys: dict[str, str]

    def owner(self, p: int) -> dict:
        return {"Authorization": f"Bearer {self.tokens[p]}"}

    def agent_of(self, p: int) -> str:
        return self.agent_ids[p % len(self.agent_ids)]

    def agent(self, p: int) -> dict:
        return {"Authorization": f"Bearer {self.agent_keys[self.agent_of(p)]}"}


async def _post(client, path: str, headers: dict, body: dict | None, status: int) -> dict:
    response = await client.post(path, headers=headers, json=body)
    if response.status_code != status:
        raise Failed(f"POST {path}: {response.status_code} {response.text[:200]}")
    return response.json()


def _submit_body(agent_id: str) -> dict:
    return {"taskType": "code_review", "maxBudget": BUDGET, "agentId": agent_id, "input": INPUT}


class Settled:
    """Terminal statuses seen on the owners' streams, and the pipelines waiting for them."""

    def __init__(self) -> None:
        self.status: dict[str, tuple[str, float]] = {}
        self.waiting: dict[str, asyncio.Future] = {}

    def saw(self, task_id: str, status: str) -> None:
        self.status.setdefault(task_id, (status, time.monotonic()))
        future = self.waiting.pop(task_id, None)
        if future is not None and not future.done():
            future.set_result(self.status[task_id])

    async def wait(self, task_id: str) -> tuple[str, float]:
        if task_id in self.status:
            return self.status.pop(task_id)
        future = asyncio.get_running_loop().create_future()
        self.waiting[task_id] = future
        try:
            return await asyncio.wait_for(future, SETTLE_DEADLINE)
        finally:
            self.waiting.pop(task_id, None)
            self.status.pop(task_id, None)


async def _follow(client, headers: dict, settled: Settled, opened: asyncio.Event, failures: list):
    """The owner's stream: every terminal ``status`` event goes to ``settled``."""
    try:
        async with client.stream("GET", "/api/v1/stream", headers=headers, timeout=None) as r:
            if r.status_code != 200:
                failures.append(f"stream: {r.status_code}")
                return
            name = None
            async for line in r.aiter_lines():
                if line.startswith("retry:"):
                    opened.set()  # its listener is registered: nothing from now on is missed
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:") and name == "status":
                    data = json.loads(line[5:])
                    if data.get("status") in TERMINAL:
                        settled.saw(data["taskId"], data["status"])
                elif not line:
                    name = None
    except Exception as exc:  # a stream that ends is an error only while it is needed
        failures.append(f"stream: {exc!r}")
    finally:
        opened.set()


async def _settle_by_poll(client, people: People, p: int, task_id: str, interval: float):
    deadline = time.monotonic() + SETTLE_DEADLINE
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/tasks/{task_id}", headers=people.owner(p))
        if response.status_code != 200:
            raise Failed(f"GET task: {response.status_code} {response.text[:200]}")
        status = response.json()["status"]
        if status in TERMINAL:
            return status, time.monotonic()
        await asyncio.sleep(interval)
    raise Failed(f"task {task_id} not settled within {SETTLE_DEADLINE:.0f} s")


async def submit_pipeline(client, people: People, p: int, end: float, tally: Tally) -> None:
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            await _post(
                client, "/api/v1/tasks", people.owner(p), _submit_body(people.agent_of(p)), 201
            )
        except Exception as exc:
            tally.error(f"submit: {exc}")
            continue
        now = time.monotonic()
        tally.finished += 1
        if now <= end:
            tally.done += 1
            tally.latency.append(now - started)


async def lifecycle_pipeline(client, people, p, end, tally, settled, args) -> None:
    from tests.factories import GOOD_OUTPUT  # a code_review finding on line 1 of INPUT's code

    owner, agent = people.owner(p), people.agent(p)
    while time.monotonic() < end:
        marks = [time.monotonic()]
        try:
            task = await _post(
                client, "/api/v1/tasks", owner, _submit_body(people.agent_of(p)), 201
            )
            tid = task["id"]
            marks.append(time.monotonic())
            sandbox = await _post(client, f"/api/v1/tasks/{tid}/sandbox", agent, None, 201)
            marks.append(time.monotonic())
            body = {"sandboxId": sandbox["sandboxId"]}
            await _post(client, f"/api/v1/tasks/{tid}/executing", agent, body, 200)
            marks.append(time.monotonic())
            body = {"output": GOOD_OUTPUT, "executionTimeMs": 1200}
            handed = await _post(client, f"/api/v1/tasks/{tid}/complete", agent, body, 200)
            marks.append(time.monotonic())
            if handed["status"] in TERMINAL:
                status, at = handed["status"], marks[-1]
            elif args.wait == "poll":
                status, at = await _settle_by_poll(client, people, p, tid, args.poll_interval)
            else:
                status, at = await settled.wait(tid)
            marks.append(max(at, marks[-1]))
            if status != "completed":
                raise Failed(f"task {tid} ended {status}")
        except TimeoutError:
            tally.error(f"a task not completed within {SETTLE_DEADLINE:.0f} s")
            continue
        except Exception as exc:
            tally.error(f"lifecycle: {exc}")
            continue
        tally.finished += 1
        if marks[-1] <= end:
            tally.done += 1
            tally.latency.append(marks[-1] - marks[0])
            tally.task_ids.append(tid)
            for name, a, b in zip(STEPS, marks, marks[1:], strict=False):
                tally.steps.setdefault(name, []).append(b - a)


STEPS = ("submit", "sandbox", "executing", "complete", "settle")


async def _at(when: float, then) -> None:
    await asyncio.sleep(max(0.0, when - time.monotonic()))
    then()


async def client_run(port: int, people: People, args, groups: Groups) -> dict:
    import httpx

    streams = len(people.tokens) if args.wait == "stream" else 0
    limits = httpx.Limits(max_connections=args.concurrency + streams + 8)
    results = {}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
    ) as client:

        async def phase(kind: str, seconds: float, settled, at_end=None) -> Tally:
            tally = Tally()
            end = time.monotonic() + seconds
            if kind == "submit":
                runs = [
                    submit_pipeline(client, people, p, end, tally) for p in range(args.concurrency)
                ]
            else:
                runs = [
                    lifecycle_pipeline(client, people, p, end, tally, settled, args)
                    for p in range(args.concurrency)
                ]
            if at_end is not None:
                runs.append(_at(end, at_end))
            await asyncio.gather(*runs)
            return tally

        async def timed(kind: str, settled: Settled | None = None) -> dict:
            # Each phase starts from a vacuumed database, as autovacuum would keep it between
            # them: where it is off (it is here), the submit phase's dead rows (the tally's
            # folded rows, the tasks' old versions) would slow the lifecycle phase after it.
            await asyncio.to_thread(groups.stats.execute, "VACUUM (ANALYZE)")
            if args.warmup:
                await phase(kind, args.warmup, settled)
            samples = [groups.sample()]
            # The CPU window is the counting window: the in-flight tail is drained after it.
            tally = await phase(
                kind, args.seconds, settled, lambda: samples.append(groups.sample())
            )
            return {"tally": tally, "cpu": Groups.used(*samples), "logs": samples}

        results["submit"] = await timed("submit")
        settled, failures, followers = Settled(), [], []
        if args.wait == "stream":
            for p in range(len(people.tokens)):
                opened = asyncio.Event()
                followers.append(
                    asyncio.create_task(_follow(client, people.owner(p), settled, opened, failures))
                )
                await opened.wait()
            if failures:
                raise RuntimeError(f"the owners' streams did not open: {failures[:3]}")
        results["lifecycle"] = await timed("lifecycle", settled)
        for failure in failures:  # a stream that broke while its owner's tasks needed it
            results["lifecycle"]["tally"].error(failure)
        for follower in followers:
            follower.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    return results


# After the run: what the database and the worker's log say about the counted tasks.


def quality_check_times(task_ids: list[str]) -> list[float]:
    """Seconds from each task's ``complete`` event to its ``pass`` (the job's queueing, the
    job, and their commits), as the events' own times record them."""
    from tasks.models import TaskEvent

    marks: dict[str, dict[str, float]] = {}
    rows = TaskEvent.objects.filter(task_id__in=task_ids, type__in=("complete", "pass"))
    for task_id, kind, at in rows.values_list("task_id", "type", "created_at"):
        marks.setdefault(task_id, {})[kind] = at.timestamp()
    return [m["pass"] - m["complete"] for m in marks.values() if len(m) == 2]


JOB_DONE = re.compile(r"Task tasks\.jobs\.(\w+)\[[^\]]+\] succeeded in ([0-9.e-]+)s")


def job_times(logs: list[tuple[Path, int, int]]) -> dict[str, list[float]]:
    """Each job's own run time (Celery's ``succeeded in``) in the logs' spans of the phase."""
    times: dict[str, list[float]] = {}
    for path, start, end in logs:
        with path.open("rb") as file:
            file.seek(start)
            text = file.read(end - start).decode(errors="replace")
        for name, seconds in JOB_DONE.findall(text):
            times.setdefault(name, []).append(float(seconds))
    return times


def _ms(values: list[float], q: float = 0.5) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _mean_ms(values: list[float]) -> float | None:
    return round(1000 * statistics.fmean(values), 1) if values else None


def _workers_words(processes: int, concurrency: int) -> str:
    total = processes * concurrency
    words = NUMBERS[total] if total < len(NUMBERS) else str(total)
    return f"{words} worker{'' if total == 1 else 's'}"


def redis_forget(redis_url: str, queue: str) -> None:
    """The run's queue and its bindings (kombu's keys): nothing is left in them, and nothing
    will consume them again."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def report_of(results: dict, job_logs, args) -> dict:
    report = {}
    for kind in ("submit", "lifecycle"):
        tally, cpu = results[kind]["tally"], results[kind]["cpu"]
        items = max(tally.done, 1)
        report[kind] = {
            "done": tally.done,
            "finished": tally.finished,
            "rate": round(tally.done / args.seconds, 2),
            "errors": tally.errors,
            "error_messages": tally.messages,
            "latency_p50_ms": _ms(tally.latency),
            "latency_p99_ms": _ms(tally.latency, 0.99),
            "cpu_ms_per_item": {
                group: round(1000 * seconds / items, 2)
                for group, seconds in cpu.items()
                if group not in ("machine_cores", "sessions")
            },
            "postgres_sessions_per_item": round(cpu["sessions"] / items, 2),
            "machine_cores_busy": round(cpu["machine_cores"], 2),
        }
    lifecycle = results["lifecycle"]["tally"]
    report["lifecycle"]["steps"] = {
        name: {"p50_ms": _ms(values), "mean_ms": _mean_ms(values), "p99_ms": _ms(values, 0.99)}
        for name, values in lifecycle.steps.items()
    }
    checks = quality_check_times(lifecycle.task_ids)
    report["lifecycle"]["complete_to_pass"] = {
        "p50_ms": _ms(checks),
        "mean_ms": _mean_ms(checks),
        "p99_ms": _ms(checks, 0.99),
    }
    report["lifecycle"]["jobs"] = {
        name: {"count": len(values), "mean_ms": _mean_ms(values), "p50_ms": _ms(values)}
        for name, values in job_times(job_logs).items()
    }
    submit_rate = report["submit"]["rate"]
    report["ratio"] = round(report["lifecycle"]["rate"] / submit_rate, 4) if submit_rate else 0.0
    return report


def table(report: dict, args) -> str:
    groups = ("client", "web", "worker", "postgres", "pg-exited", "redis")
    lines = [
        f"{'phase':<10} {'done':>5} {'per s':>6} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | "
        "CPU ms per item: " + " ".join(f"{g:>8}" for g in groups) + " | machine (cores busy) | "
        "PG sessions per item",
    ]
    for kind in ("submit", "lifecycle"):
        r = report[kind]
        cpu = r["cpu_ms_per_item"]
        lines.append(
            f"{kind:<10} {r['done']:>5} {r['rate']:>6.1f} {r['latency_p50_ms'] or 0:>7.1f} "
            f"{r['latency_p99_ms'] or 0:>7.1f} {r['errors']:>6} | {'':>16} "
            + " ".join(f"{cpu[g]:>8.1f}" for g in groups)
            + f" | {cpu['machine']:>7.1f} ({r['machine_cores_busy']:.2f})"
            + f"       | {r['postgres_sessions_per_item']:>6.2f}"
        )
        for message in r["error_messages"]:
            lines.append(f"           error: {message}")
    life = report["lifecycle"]
    steps = "  ".join(f"{name} {s['p50_ms']}/{s['mean_ms']}" for name, s in life["steps"].items())
    lines.append(f"lifecycle steps, p50/mean ms: {steps}")
    check = life["complete_to_pass"]
    jobs = ", ".join(f"{name} {j['mean_ms']} ms ({j['count']})" for name, j in life["jobs"].items())
    lines.append(
        f"complete event -> pass event: p50 {check['p50_ms']} ms, mean {check['mean_ms']} ms, "
        f"p99 {check['p99_ms']} ms; worker jobs, mean run time: {jobs or 'not logged'}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run = f"bench-lifecycle-{uuid.uuid4().hex[:8]}"
    queue = f"{run}:jobs"
    try:
        db = services_ready(args.database_url, args.redis_url)
        # Every process started here inherits these: the run's own queue and stream channel.
        os.environ.update(CELERY_QUEUE=queue, STREAM_REDIS_CHANNEL=run)
        django_setup(args.database_url, args.redis_url)
        migrate()
        ceiling = None
        if args.ceiling:
            ceiling_tool_check()
            # pgbench with as many clients as there are pipelines, over as many owners as
            # bench/ceiling's default, so that the owners' row locks do not serialise it.
            ceiling = ceiling_measure(
                db,
                argparse.Namespace(
                    owners=max(64, args.concurrency),
                    connections=args.concurrency,
                    threads=min(2, args.concurrency),
                    seconds=10,
                ),
            )
        tokens, agent_ids, _ = people(args.concurrency)
        from django.db import connection

        from city.identity import services as identity
        from city.identity.models import Agent

        keys = {
            agent.pk: identity.agent_key_issue(agent=agent, name="bench").secret
            for agent in Agent.objects.filter(pk__in=agent_ids)
        }
        # Autovacuum may be off (it is here): a grown database would keep an empty one's plans.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        connection.close()
        api_ceiling.SERVER_LOG = SERVER_LOG  # its server_start logs there; this run's own file
        web_args = argparse.Namespace(web=None, workers=args.web_workers)
        server, port = server_start(web_args, {})
        try:
            workers = workers_start(args)
        except Refused:
            processes_stop([server])
            raise
    except Refused as exc:
        print(f"bench/lifecycle: {exc}", file=sys.stderr)
        return 2

    logs = [Path(str(WORKER_LOG).format(n=n)) for n in range(len(workers))]
    import psycopg

    stats = None
    try:
        stats = psycopg.connect(dbname=db["NAME"], autocommit=True, **server_params(db))
        groups = Groups(server.pid, [w.pid for w in workers], db["NAME"], logs, stats)
        results = asyncio.run(client_run(port, People(tokens, agent_ids, keys), args, groups))
    finally:
        if stats is not None:
            stats.close()
        processes_stop([*workers, server])
        redis_forget(args.redis_url, queue)
    first, last = results["lifecycle"]["logs"]
    job_logs = [(path, first["logs"][n], last["logs"][n]) for n, path in enumerate(logs)]
    report = report_of(results, job_logs, args)
    ok, ledger = ledger_check()
    errors = report["submit"]["errors"] + report["lifecycle"]["errors"]
    workers_text = _workers_words(args.worker_processes, args.worker_concurrency)
    line = (
        f"lifecycle: {report['lifecycle']['rate']:.1f} tasks/s completed = "
        f"{100 * report['ratio']:.1f}% of the submit rate {report['submit']['rate']:.1f}/s "
        f"({workers_text}, {errors} error{'' if errors == 1 else 's'})"
    )
    report.update(
        line=line,
        ledger=ledger,
        ledger_ok=ok,
        seconds=args.seconds,
        concurrency=args.concurrency,
        wait=args.wait,
        poll_interval=args.poll_interval if args.wait == "poll" else None,
        web=procfile_line("web"),
        web_concurrency=args.web_workers or int(os.environ.get("WEB_CONCURRENCY") or 2),
        worker=procfile_line("worker"),
        worker_processes=args.worker_processes,
        worker_concurrency=args.worker_concurrency,
        cpu=cpu_model(),
        cores=os.cpu_count(),
        ceiling=ceiling,
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.concurrency} pipelines, {args.seconds:g} s a phase, wait by {args.wait}; "
            f"web x{report['web_concurrency']}, worker x{args.worker_processes} "
            f"--concurrency {args.worker_concurrency}; {os.cpu_count()} cores ({cpu_model()})"
        )
        print(table(report, args))
        print(f"ledger: {ledger}")
        if ceiling is not None:
            print(ceiling["line"])
            print(
                f"the database's own bound on the ratio: {100 * ceiling['ratio']:.1f}%; "
                f"this run's ratio is {report['ratio'] / ceiling['ratio']:.2f} of it"
            )
        print(line)
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
