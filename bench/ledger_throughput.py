"""Ledger throughput on PostgreSQL, as ratios against a bare transaction measured in the same run.

For each thread count it times, with one connection per thread:

- ``baseline``: one committed transaction that inserts a scratch row and updates the thread's own
  counter row: the floor any write costs on this machine and this database;
- ``baseline-hot``: the same, all threads updating one counter row: what a contended row alone
  costs;
- ``own-pool``: ``hold_place`` then ``hold_capture`` through ``credits.services``, each thread
  paying from its own owner's pool to its own agent (only the platform's fees account is shared);
- ``shared-pool``: the same, every thread paying from one owner's pool (the pool and escrow rows
  are shared too).

Each scenario's cost is reported as a multiple of ``baseline`` at the same thread count, so the
numbers travel between machines; absolute operations per second do not. It ends with
``check_ledger``, which must pass: no money lost or made under concurrency.

    .venv/bin/python bench/ledger_throughput.py [--iterations 300] [--threads 1,8] [--json]
        [--database-url postgres://postgres@127.0.0.1:5432/city_bench] [--max-seconds 120]

Exit status: 0 on success, 1 if an operation failed or ``check_ledger`` did not pass, 2 if it
refused to run (SQLite, a host other than this machine, a database not named for benchmarks, no
PostgreSQL there).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/city_bench"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}  # "" is a local Unix socket
MAX_THREADS = 32
MAX_ITERATIONS = 5000
WARMUP = 10  # untimed operations per thread: connections opened, plans and caches warm
BUDGET = 5000  # cents held per task-like operation
PRICE = 2500  # cents charged out of it; the fee is PLATFORM_FEE_BPS of this
SAMPLE_SECONDS = 0.05
SCRATCH = "bench_ledger_scratch"
COUNTER = "bench_ledger_counter"
HOT_COUNTER = 0  # the counter row every thread of baseline-hot updates
SCENARIOS = ("baseline", "baseline-hot", "own-pool", "shared-pool")
# The baseline brackets the other scenarios at each thread count: measured first and last, its
# two halves pooled, so that a machine speeding up or slowing down mid-run shows as drift
# instead of silently moving every ratio.
PLAN = (*SCENARIOS, "baseline")
# Shares of --max-seconds: a ledger operation takes some fifteen baselines' time or more.
WEIGHT = {"own-pool": 4, "shared-pool": 4}


class Refused(Exception):
    """The benchmark will not run against this target."""


@dataclass
class Phase:
    scenario: str
    threads: int
    ops: int = 0
    seconds: float = 0.0
    ops_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    cost_x_baseline: float | None = None
    p50_x_baseline: float | None = None
    drift: float | None = None  # baseline only: its ops/s measured last over measured first
    lock_waiters: float = 0.0  # sessions waiting on a heavyweight (row) lock, on average
    active_sessions: float = 0.0  # sessions running a statement, on average
    waits: dict[str, float] = field(default_factory=dict)  # wait event -> sessions, on average
    truncated: bool = False  # stopped by its share of --max-seconds before --iterations
    errors: list[str] = field(default_factory=list)


# Arguments and the target database


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Ledger throughput (hold_place + hold_capture) as a multiple of a bare "
        "INSERT+UPDATE transaction, on PostgreSQL."
    )
    parser.add_argument("--iterations", type=int, default=300, help="timed operations per thread")
    parser.add_argument("--threads", default="1,8", help="comma-separated thread counts")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"PostgreSQL on this machine (default: $DATABASE_URL or {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="wall-clock cap for the whole run"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        args.threads = sorted({int(t) for t in args.threads.split(",") if t.strip()})
    except ValueError:
        parser.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    if not args.threads or not all(1 <= t <= MAX_THREADS for t in args.threads):
        parser.error(f"--threads must be between 1 and {MAX_THREADS}")
    if not 1 <= args.iterations <= MAX_ITERATIONS:
        parser.error(f"--iterations must be between 1 and {MAX_ITERATIONS}")
    if not 1 <= args.max_seconds <= 600:
        parser.error("--max-seconds must be between 1 and 600")
    return args


def target_of(url: str) -> dict:
    """The parsed database URL, once it is known to be a local PostgreSQL benchmark database."""
    import dj_database_url

    try:
        db = dj_database_url.parse(url)
    except ValueError as exc:
        raise Refused(f"cannot read the database URL {url!r}: {exc}") from None
    if db["ENGINE"] == "django.db.backends.sqlite3":
        raise Refused(
            "this benchmark needs PostgreSQL: SQLite ignores row locks and serializes every "
            "writer, so its numbers would say nothing about the ledger under concurrency. "
            f"Set --database-url or DATABASE_URL, e.g. {DEFAULT_DATABASE_URL}"
        )
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise Refused(f"this benchmark needs PostgreSQL, not {db['ENGINE']}")
    if (db.get("HOST") or "") not in LOCAL_HOSTS:
        raise Refused(f"benchmarks only load this machine (127.0.0.1), not {db['HOST']!r}")
    # Ledger rows are append-only (the database refuses deletes), so what a run writes stays:
    # never into a database someone uses for anything else.
    if "bench" not in db["NAME"]:
        raise Refused(
            f"refusing to write benchmark owners and ledger rows into database {db['NAME']!r}: "
            "they can never be deleted; use a database whose name contains 'bench'"
        )
    return db


def server_params(db: dict) -> dict:
    """psycopg connection keywords for the server of a parsed database URL, without a dbname."""
    params = {"host": db.get("HOST"), "port": db.get("PORT"), "user": db.get("USER")}
    params["password"] = db.get("PASSWORD")
    return {key: value for key, value in params.items() if value}


def database_create_if_missing(db: dict) -> bool:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **server_params(db)) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        return True


def services_ready(database_url: str, redis_url: str, prepare=database_create_if_missing) -> dict:
    """The parsed benchmark database once Redis answers and ``prepare`` made the database
    ready on PostgreSQL (by default: created if missing); ``Refused`` saying which is missing."""
    db = target_of(database_url)
    import psycopg
    import redis

    try:
        redis.Redis.from_url(redis_url).ping()
    except redis.RedisError as exc:
        raise Refused(f"this benchmark needs Redis at {redis_url}: {exc}") from None
    try:
        prepare(db)
    except psycopg.OperationalError as exc:
        raise Refused(f"this benchmark needs PostgreSQL at {database_url}: {exc}") from None
    return db


def django_setup(url: str, max_threads: int) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "city.settings"
    # DEBUG records every query on the connection, which would tax the ORM-heavy scenarios
    # more than the baseline's two statements.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Every worker thread holds a pooled connection for its whole phase; with fewer slots the
    # extra threads would time out waiting for one instead of measuring anything.
    pool_max = int(os.environ.get("DATABASE_POOL_MAX") or 0)
    os.environ["DATABASE_POOL_MAX"] = str(max(pool_max, max_threads + 2))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# Operations


def subject_new() -> str:
    """A task-like id (25 characters, as ``tasks.models.task_id``), marked as a benchmark's."""
    from city.identity.ids import random_id

    return "bn" + random_id("", 23)


def baseline_op(counter_id: int) -> Callable[[], None]:
    from django.db import connection, transaction

    insert = (
        f"INSERT INTO {SCRATCH} (counter_id, amount, kind, subject, created_at) "
        "VALUES (%s, %s, 'bench', %s, now())"
    )
    update = f"UPDATE {COUNTER} SET value = value + %s WHERE id = %s"

    def op() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(insert, [counter_id, PRICE, subject_new()])
            cursor.execute(update, [PRICE, counter_id])

    return op


def ledger_op(owner, agent) -> Callable[[], None]:
    from credits import services as credits

    def op() -> None:
        subject = subject_new()
        # The calls tasks.services makes when a task is submitted, then completed and passed.
        hold = credits.hold_place(
            owner=owner, amount=BUDGET, reference=f"task:{subject}", subject=subject
        )
        credits.hold_capture(hold=hold, price=PRICE, payee_id=agent.pk)

    return op


def scratch_create(max_threads: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}, {COUNTER}")
        # Shaped like a ledger entry: a few keys, an amount, a kind, a subject, a timestamp.
        cursor.execute(
            f"CREATE TABLE {SCRATCH} (id bigserial PRIMARY KEY, counter_id integer NOT NULL, "
            "amount bigint NOT NULL, kind varchar(16) NOT NULL, subject varchar(64) NOT NULL, "
            "created_at timestamptz NOT NULL)"
        )
        cursor.execute(f"CREATE TABLE {COUNTER} (id integer PRIMARY KEY, value bigint NOT NULL)")
        cursor.execute(
            f"INSERT INTO {COUNTER} (id, value) SELECT n, 0 FROM generate_series(0, %s) n",
            [max_threads],
        )


def ledger_analyze() -> None:
    """Fresh planner statistics for the ledger's tables, whatever earlier runs left behind."""
    from django.db import connection

    from credits.models import Account, Entry, Hold, Transaction

    # Where autovacuum is off (as on some CI machines) tables grown by earlier runs keep the
    # plans of empty ones; production's autovacuum would have analyzed them.
    tables = ", ".join(m._meta.db_table for m in (Account, Entry, Hold, Transaction))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def scratch_drop() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}, {COUNTER}")


class People:
    """Owners and agents made through ``city.services``, funded through ``grant_issue``."""

    def __init__(self, run: str):
        from city.identity import services as identity

        self.run = run
        self.made = 0
        self.operator, _ = identity.owner_create(email=f"bench-{run}-operator@bench.local")

    def owner(self, *, funds: int):
        from city.identity import services as identity
        from credits import services as credits

        self.made += 1
        owner, _ = identity.owner_create(email=f"bench-{self.run}-owner{self.made}@bench.local")
        credits.grant_issue(owner=owner, amount=funds, memo=f"benchmark {self.run}")
        return owner

    def agent(self):
        from city.identity import services as identity

        self.made += 1
        agent, _ = identity.agent_create(
            operator=self.operator,
            name=f"bench {self.run} agent {self.made}",
            offers={"code_review": PRICE},
        )
        return agent


def ops_for(scenario: str, threads: int, per_thread: int, people: People) -> list[Callable]:
    if scenario == "baseline":
        return [baseline_op(i + 1) for i in range(threads)]
    if scenario == "baseline-hot":
        return [baseline_op(HOT_COUNTER) for _ in range(threads)]
    # Each operation costs its payer PRICE; a hold needs BUDGET available when it is placed.
    if scenario == "own-pool":
        return [
            ledger_op(people.owner(funds=per_thread * PRICE + BUDGET), people.agent())
            for _ in range(threads)
        ]
    shared = people.owner(funds=threads * per_thread * PRICE + BUDGET)
    return [ledger_op(shared, people.agent()) for _ in range(threads)]


def round_trips_per_op(op: Callable[[], None]) -> int:
    """Statements sent for one call, BEGIN and COMMIT included (Django records both)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        op()
    return len(captured.captured_queries)


# Measuring


class WaitSampler:
    """Samples pg_stat_activity of the benchmark database: who runs, who waits, on what."""

    def __init__(self, db: dict):
        self.db = db
        self.samples = 0
        self.active = 0
        self.lock_waiters = 0
        self.waits: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        # Its own connection, outside Django's pool, so that it never takes a worker's slot.
        params = server_params(self.db)
        with psycopg.connect(dbname=self.db["NAME"], autocommit=True, **params) as conn:
            while not self._stop.wait(SAMPLE_SECONDS):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                ).fetchall()
                self.samples += 1
                for state, wait_type, wait_event in rows:
                    if state == "active":
                        self.active += 1
                    if wait_type == "Lock":
                        self.lock_waiters += 1
                    if state == "active" and wait_type is not None:
                        self.waits[f"{wait_type}:{wait_event}"] += 1


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def phase_run(
    phase: Phase, ops: list[Callable[[], None]], iterations: int, budget: float, db: dict
) -> tuple[Phase, list[float]]:
    """Run each op in its own thread and connection; warm up, start together, time each call."""
    from django.db import connection

    connection.close()  # the main thread's pooled connection goes back before workers take theirs
    threads = len(ops)
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in ops]
    finished: list[float] = [0.0] * threads
    cut_short = threading.Event()
    errors: list[str] = []

    def work(i: int, op: Callable[[], None]) -> None:
        try:
            for _ in range(min(WARMUP, iterations)):
                op()
            barrier.wait(timeout=60)
            deadline = time.perf_counter() + budget
            mine = latencies[i]
            for _ in range(iterations):
                if time.perf_counter() >= deadline:
                    cut_short.set()
                    break
                started = time.perf_counter()
                op()
                mine.append(time.perf_counter() - started)
        except threading.BrokenBarrierError:
            pass  # another thread failed its warm-up and said why
        except Exception as exc:
            errors.append(f"thread {i}: {type(exc).__name__}: {exc}")
            barrier.abort()
        finally:
            finished[i] = time.perf_counter()
            connection.close()

    workers = [
        threading.Thread(target=work, args=(i, op), daemon=True, name=f"bench-{i}")
        for i, op in enumerate(ops)
    ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        pass  # a worker failed its warm-up; the others stop at the broken barrier
    started = time.perf_counter()
    with WaitSampler(db) as sampler:  # the timed part only, not the warm-up
        for worker in workers:
            worker.join(timeout=budget + 60)
    if any(worker.is_alive() for worker in workers):
        errors.append("a worker never finished (stuck on a lock?)")

    every = sorted(x for mine in latencies for x in mine)
    phase.seconds = max(0.0, max(finished) - started)
    phase_latencies_set(phase, every)
    phase.truncated = cut_short.is_set()
    phase.errors = errors
    if sampler.samples:
        phase.lock_waiters = sampler.lock_waiters / sampler.samples
        phase.active_sessions = sampler.active / sampler.samples
        phase.waits = {name: n / sampler.samples for name, n in sampler.waits.most_common(4)}
    return phase, every


def phase_latencies_set(phase: Phase, every: list[float]) -> None:
    phase.ops = len(every)
    phase.ops_per_s = phase.ops / phase.seconds if phase.seconds > 0 else 0.0
    phase.p50_ms = percentile(every, 0.50) * 1000
    phase.p95_ms = percentile(every, 0.95) * 1000


def phase_merge(first: Phase, first_every: list[float], last: Phase, last_every: list[float]):
    """The two halves of a bracketing baseline as one phase, and its pooled latencies."""
    every = sorted(first_every + last_every)
    merged = Phase(first.scenario, first.threads, seconds=first.seconds + last.seconds)
    phase_latencies_set(merged, every)
    if first.ops_per_s:
        merged.drift = last.ops_per_s / first.ops_per_s
    share = first.seconds / merged.seconds if merged.seconds else 0.5
    merged.lock_waiters = share * first.lock_waiters + (1 - share) * last.lock_waiters
    merged.active_sessions = share * first.active_sessions + (1 - share) * last.active_sessions
    waits = Counter(
        {
            name: share * first.waits.get(name, 0) + (1 - share) * last.waits.get(name, 0)
            for name in first.waits.keys() | last.waits.keys()
        }
    )
    merged.waits = dict(waits.most_common(4))
    merged.truncated = first.truncated or last.truncated
    merged.errors = first.errors + last.errors
    return merged, every


def ratios_set(phases: list[Phase]) -> None:
    baselines = {p.threads: p for p in phases if p.scenario == "baseline"}
    for phase in phases:
        base = baselines.get(phase.threads)
        if base is None or not base.ops_per_s or not phase.ops_per_s:
            continue
        # Cost per operation, in units of the baseline's: its throughput over ours.
        phase.cost_x_baseline = base.ops_per_s / phase.ops_per_s
        phase.p50_x_baseline = phase.p50_ms / base.p50_ms if base.p50_ms else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def server_facts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        facts = {}
        for name in ("server_version", "synchronous_commit", "fsync", "autovacuum"):
            cursor.execute(f"SHOW {name}")
            facts[name] = cursor.fetchone()[0]
    return facts


def ledger_check() -> tuple[bool, str]:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_ledger", stdout=out, stderr=err)
    except CommandError as exc:
        return False, f"{exc}\n{err.getvalue()}".strip()
    return True, out.getvalue().strip()


# Reporting


def table(report: dict) -> str:
    lines = [
        f"City ledger throughput, {report['date']} on {report['machine']['cpus']} CPUs "
        f"({report['machine']['processor']}), PostgreSQL "
        f"{report['postgres']['server_version']} (synchronous_commit="
        f"{report['postgres']['synchronous_commit']}, autovacuum="
        f"{report['postgres']['autovacuum']}), {report['iterations']} ops/thread",
        "round trips per op, BEGIN and COMMIT included: "
        f"baseline {report['round_trips_per_op']['baseline']} (1 transaction), "
        f"hold+capture {report['round_trips_per_op']['hold+capture']} (2 transactions)",
        "",
        f"{'scenario':<13}{'threads':>8}{'ops':>7}{'ops/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'cost×base':>11}{'p50×base':>10}{'lockwait':>10}{'active':>8}",
    ]
    for p in report["phases"]:
        cost = f"{p['cost_x_baseline']:.2f}" if p["cost_x_baseline"] else "-"
        p50x = f"{p['p50_x_baseline']:.2f}" if p["p50_x_baseline"] else "-"
        flag = " (cut short)" if p["truncated"] else ""
        lines.append(
            f"{p['scenario']:<13}{p['threads']:>8}{p['ops']:>7}{p['ops_per_s']:>9.0f}"
            f"{p['p50_ms']:>9.2f}{p['p95_ms']:>9.2f}{cost:>11}{p50x:>10}"
            f"{p['lock_waiters']:>10.2f}{p['active_sessions']:>8.2f}{flag}"
        )
    drifts = [
        f"{p['drift']:.2f} at {p['threads']} thread(s)"
        for p in report["phases"]
        if p["drift"] is not None
    ]
    if drifts:
        lines.append(f"baseline drift, ops/s measured last over first: {', '.join(drifts)}")
    lines.append("")
    for p in report["phases"]:
        if p["scenario"] in ("own-pool", "shared-pool") and p["cost_x_baseline"]:
            lines.append(
                f"{p['scenario']} at {p['threads']} thread(s): hold+capture costs "
                f"{p['cost_x_baseline']:.1f}x the baseline transaction"
            )
    for p in report["phases"]:
        for error in p["errors"]:
            lines.append(f"ERROR {p['scenario']}/{p['threads']}: {error}")
    lines.append(
        ("ledger check passed: " if report["ledger_ok"] else "LEDGER CHECK FAILED: ")
        + report["ledger_check"]
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    clock_started = time.perf_counter()
    try:
        db = target_of(args.database_url)
    except Refused as exc:
        print(f"ledger_throughput: {exc}", file=sys.stderr)
        return 2
    import psycopg

    try:
        created = database_create_if_missing(db)
    except psycopg.OperationalError as exc:
        print(f"ledger_throughput: cannot reach PostgreSQL: {exc}".strip(), file=sys.stderr)
        return 2
    django_setup(args.database_url, max(args.threads))

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    if not args.json:
        print(
            f"database {db['NAME']} {'created and ' if created else ''}migrated; "
            f"running {len(args.threads) * len(PLAN)} phases, at most "
            f"{args.max_seconds:.0f} s",
            file=sys.stderr,
        )
    run = secrets.token_hex(4)
    people = People(run)
    scratch_create(max(args.threads))
    ledger_analyze()
    per_thread = min(WARMUP, args.iterations) + args.iterations
    try:
        # Unthreaded, the second of each call (the first may open the platform's fee account).
        probes = {
            "baseline": baseline_op(HOT_COUNTER),
            "hold+capture": ledger_op(people.owner(funds=2 * PRICE + BUDGET), people.agent()),
        }
        for probe in probes.values():
            probe()
        round_trips = {name: round_trips_per_op(probe) for name, probe in probes.items()}
        phases: list[Phase] = []
        first_baseline: dict[int, tuple[Phase, list[float]]] = {}
        plan = [(t, s) for t in args.threads for s in PLAN]
        for done, (threads, scenario) in enumerate(plan):
            # Whatever time is left, less a reserve for the ledger check, shared by what is left.
            left = args.max_seconds - (time.perf_counter() - clock_started)
            share = WEIGHT.get(scenario, 1) / sum(WEIGHT.get(s, 1) for _, s in plan[done:])
            budget = max(0.5, left * 0.9 * share)
            ops = ops_for(scenario, threads, per_thread, people)
            phase, every = phase_run(Phase(scenario, threads), ops, args.iterations, budget, db)
            if scenario != "baseline":
                phases.append(phase)
            elif threads not in first_baseline:
                first_baseline[threads] = (phase, every)
                phases.append(phase)
            else:
                merged, _ = phase_merge(*first_baseline[threads], phase, every)
                phases[phases.index(first_baseline[threads][0])] = merged
            if phase.errors:
                break
        facts = server_facts()
    finally:
        scratch_drop()
    ratios_set(phases)
    ledger_ok, ledger_summary = ledger_check()
    connection.close()
    connection.close_pool()

    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": cpu_model(),
            "python": platform.python_version(),
        },
        "postgres": facts,
        "database": db["NAME"],
        "run": run,
        "iterations": args.iterations,
        "warmup": min(WARMUP, args.iterations),
        "threads": args.threads,
        "max_seconds": args.max_seconds,
        "seconds": round(time.perf_counter() - clock_started, 1),
        "round_trips_per_op": round_trips,
        "phases": [asdict(p) for p in phases],
        "ledger_ok": ledger_ok,
        "ledger_check": ledger_summary,
    }
    for p in report["phases"]:
        for key in ("seconds", "ops_per_s", "p50_ms", "p95_ms", "lock_waiters", "active_sessions"):
            p[key] = round(p[key], 3)
        for key in ("cost_x_baseline", "p50_x_baseline", "drift"):
            p[key] = round(p[key], 2) if p[key] is not None else None
        p["waits"] = {name: round(n, 2) for name, n in p["waits"].items()}
    print(json.dumps(report) if args.json else table(report))
    failed = any(p.errors for p in phases)
    return 1 if failed or not ledger_ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
