"""The task list's latency for one owner holding 10,000 tasks, then 1,000,000, in the same run.

``GET /api/v1/tasks`` over HTTP against the ``Procfile``'s ``web`` line (``DEBUG`` off; its
workers, ``--workers`` to change them), on PostgreSQL and Redis, for one owner whose tasks are
bulk-loaded in SQL: first up to ``--tasks-small`` (10,000), then, into the same owner, up to
``--tasks-large`` (1,000,000). At each size a fresh server answers ``--requests`` (300) of each
of three requests, sequentially on one keep-alive connection, after ``--warmup`` untimed ones:

- ``default``: the first page, pageSize 20, no filter (what a client's ``list()`` sends);
- ``status``: the same with ``status=failed`` (``--status``);
- ``page``: page 50 (``--page``), pageSize 20;
- ``agent``: the first page of the agent assigned the most of those tasks, as that agent (its
  whole list, no ``role``: the tasks it hired and those assigned to it, merged).

The three are interleaved, so that a machine slowing down mid-phase moves them all alike. Each
response must be ``200`` with the exact ``total`` (counted in SQL before the phase); anything
else is an error. (Before the web line served with ``city.http.NoDelayHTTPProtocol``, uvicorn's
multi-worker path left Nagle's algorithm on and each keep-alive request waited some 40 ms for
the client's delayed ACK, a constant that hid the list's own cost; this benchmark ran one worker
then.) The figure is the default request's p95 at the large
size over its p95 at the small one (the goal: at most 1.5):

    list: p95 57.15 ms at 1,000,000 tasks = 0.90× its 63.76 ms at 10,000 (p50 9.49 / 12.53 ms)

The rows. Each phase inserts its tasks and their holds with ``INSERT ... SELECT`` over
``generate_series``, 100,000 rows a statement: ``created_at`` one every 86.4 s on average (a
thousand a day, jittered), the 10,000 over the last ten days and the rest over the 2.7 years
before; a code review's input of 0.4-2.3 KB, 1.2 KB on average (a description, a repository, a
snippet of code, a file list for some); statuses mixed as a busy owner's history would be: 75%
``completed`` (an output with findings, a quality score, some with a thumbs-up), 3% ``refunded``
(thumbs-down), 22% ``failed`` (cancelled, timeout, execution error, quality gate, budget
exceeded; with and without an agent). ``check_ledger`` audits every task's money against its
hold, so every task gets its hold, settled as its status says: released for a failed task
(nothing moved, net), captured and fully refunded for a refunded one (nothing moved, net),
captured at the agent's price for a completed one. The completed tasks' money does move: per
agent and phase, one hold and capture of the sum of their prices through ``credits.services``
(the ledger's only writer), so the owner's pool, the agents' earnings and the fees stand where
that many captures would leave them, in a handful of ledger rows instead of millions. The live
tasks (1% of the small size, direct hires waiting in ``submitted``, with open holds) are real
submits through ``tasks.services.task_submit``, as is the one task ``people()`` makes. After
each load: ``VACUUM (ANALYZE)`` of the tasks and holds, as autovacuum would do after a bulk
insert (this machine runs with autovacuum off, so a grown table would otherwise keep an empty
table's plans).

``--explain`` also prints, at each size, ``EXPLAIN (ANALYZE, BUFFERS)`` of each statement the
endpoint sends for the three requests (run in-process once, after the timed part).

    bench/list [--tasks-small 10000] [--tasks-large 1000000] [--requests 300] [--warmup 30]
               [--status failed] [--page 50] [--database-url URL] [--explain] [--json]

Its own database by default, ``city_bench_list``, dropped and created again at the start of each
run (any database whose name contains ``bench_list`` is; another ``bench`` database just gains
this run's owner and rows, which stay: ledger rows can never be deleted). The server's output
goes to ``var/bench-list-server.log``.

Exit status: 0 when every request answered 200 with the exact total and ``check_ledger``
passed; 1 if not; 2 if it refused to run (no PostgreSQL or Redis here, a database not named for
benchmarks, an owner already holding more tasks than asked for).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_ceiling
from api_ceiling import django_setup, ledger_check, migrate, people, server_start, server_stop
from ledger_throughput import (
    Refused,
    cpu_model,
    database_create_if_missing,
    percentile,
    server_params,
    services_ready,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/city_bench_list"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CHUNK = 100_000  # rows per INSERT statement
SPACING_SECONDS = 86.4  # on average between two tasks: a thousand a day
LIVE_SHARE = 100  # one task in this many of the small size is live (a real submit)
LIVE_BUDGET = 500

# The snippet a code review's input carries a prefix of (0.2 to 1.6 KB of it).
CODE = """import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)


@dataclass
class Invoice:
    id: str
    customer_id: str
    amount_cents: int
    issued_at: datetime
    paid_at: datetime | None = None

    def is_overdue(self, now: datetime, terms_days: int = 30) -> bool:
        if self.paid_at is not None:
            return False
        return now - self.issued_at > timedelta(days=terms_days)


def overdue_invoices(invoices, now=None):
    now = now or datetime.utcnow()
    late = [invoice for invoice in invoices if invoice.is_overdue(now)]
    log.info("found %d overdue invoices out of %d", len(late), len(invoices))
    return sorted(late, key=lambda invoice: invoice.issued_at)


def remind(customer, invoices, mailer):
    total = sum(invoice.amount_cents for invoice in invoices)
    if total == 0:
        return None
    body = "\\n".join(f"- {invoice.id}: {invoice.amount_cents / 100:.2f}" for invoice in invoices)
    message = mailer.compose(
        to=customer.email,
        subject=f"{len(invoices)} invoices overdue",
        body=f"Dear {customer.name},\\n\\nThese invoices are overdue:\\n{body}\\n",
    )
    try:
        return mailer.send(message)
    except Exception:
        log.exception("reminder to %s failed", customer.id)
        raise


class RetryingMailer:
    def __init__(self, transport, attempts=3):
        self.transport = transport
        self.attempts = attempts

    def send(self, message):
        for attempt in range(self.attempts):
            try:
                return self.transport.deliver(message)
            except TimeoutError:
                log.warning("attempt %d timed out", attempt + 1)
        raise TimeoutError(f"gave up after {self.attempts} attempts")
"""

# One statement per chunk: the holds, then the tasks that own them. ``h`` (0-999) picks each
# row's status, budget and details, the same for the same row number and run.
LOAD_SQL = """
WITH src AS (
    SELECT g,
           substr(md5(%(salt)s::text || ':' || g), 1, 25) AS tid,
           abs(hashtext(%(salt)s::text || ':' || g)::bigint) %% 1000 AS h,
           %(origin)s::timestamptz - make_interval(
               secs => (g + (abs(hashtext('t' || g)::bigint) %% 1000) / 1000.0) * %(spacing)s
           ) AS created
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
), picked AS (
    SELECT src.*,
           CASE WHEN h < 750 THEN 'completed' WHEN h < 780 THEN 'refunded' ELSE 'failed' END
               AS status,
           CASE WHEN h < 780 THEN '' WHEN h < 840 THEN 'cancelled' WHEN h < 890 THEN 'timeout'
                WHEN h < 950 THEN 'execution_error' WHEN h < 980 THEN 'quality_gate'
                ELSE 'budget_exceeded' END AS reason,
           (ARRAY[500, 1000, 2500, 5000, 10000])[1 + h %% 5] AS budget,
           (%(agents)s::text[])[1 + g %% cardinality(%(agents)s::text[])] AS some_agent,
           (%(earnings)s::bigint[])[1 + g %% cardinality(%(earnings)s::bigint[])] AS some_payee,
           h %% 3 = 0 AS direct
    FROM src
), shaped AS (
    SELECT picked.*,
           NOT (reason = 'budget_exceeded'
                OR (reason IN ('cancelled', 'timeout') AND g %% 2 = 0)) AS assigned,
           reason NOT IN ('cancelled', 'budget_exceeded')
               AND NOT (reason = 'timeout' AND g %% 2 = 0) AS started,
           status <> 'failed' OR reason = 'quality_gate' AS handed_in,
           created + make_interval(secs => 20 + h %% 40) AS started_at,
           created + make_interval(secs => 60 + h * 3) AS finished_at
    FROM picked
), holds AS (
    INSERT INTO credits_hold (reference, subject, payer_id, escrow_id, amount, status, payee_id,
                              charged, fee, refunded, created_at, settled_at)
    SELECT 'task:' || tid, tid, %(pool)s, %(escrow)s, budget,
           CASE WHEN status = 'failed' THEN 'released' ELSE 'captured' END,
           CASE WHEN status = 'failed' THEN NULL ELSE some_payee END,
           CASE WHEN status = 'failed' THEN 0 ELSE %(price)s END,
           CASE WHEN status = 'failed' THEN 0 ELSE %(fee)s END,
           CASE WHEN status = 'refunded' THEN %(price)s ELSE 0 END,
           created, finished_at
    FROM shaped
    RETURNING id, subject
)
INSERT INTO tasks_task (
    id, task_type, status, input, output, max_budget, price, caller_owner_id, caller_agent_id,
    agent_id, direct_hire, routing_since, route_attempts, next_route_at, excluded_agent_ids,
    execution_timeout, parent_id, hold_id, sandbox_id, credits_held, credits_charged,
    credits_refunded, quality_score, quality_reasons, self_reported_quality_score,
    execution_time_ms, failure_reason, error_message, feedback, feedback_at, created_at,
    updated_at, assigned_at, started_at, completed_at, finished_at
)
SELECT
    tid, 'code_review', status,
    jsonb_build_object(
        'description',
        (ARRAY['Review the', 'Check the', 'Look over the', 'Audit the'])[1 + h %% 4] || ' '
            || (ARRAY['billing', 'invoice reminder', 'retry', 'logging', 'customer export'])
               [1 + g %% 5]
            || ' change in PR #' || (1000 + g %% 9000) || ': '
            || (ARRAY['look for bugs, unhandled errors and missing tests.',
                      'is the overdue logic right around month ends and time zones?',
                      'we saw duplicate reminders in production last week; find why.',
                      'focus on readability and naming; it is a junior''s first PR.'])
               [1 + g %% 4],
        'repo',
        'https://github.com/acme/' || (ARRAY['billing', 'api', 'web', 'workers'])[1 + g %% 4],
        'code', left(%(code)s::text, (200 + (h * 7) %% 1400)::int)
    ) || CASE WHEN h %% 4 = 0 THEN jsonb_build_object('files', jsonb_build_array(
            jsonb_build_object('name', 'billing/invoices.py', 'content', left(%(code)s::text, 300)),
            jsonb_build_object('name', 'billing/tests/test_invoices.py',
                               'content', 'def test_overdue():\n    assert True\n')))
         ELSE '{}'::jsonb END,
    CASE WHEN handed_in AND status <> 'failed' THEN jsonb_build_object(
            'summary', (1 + h %% 4) || ' findings: the overdue check ignores time zones and the '
                       || 'mailer retries swallow the last error.',
            'findings', jsonb_build_array(
                jsonb_build_object('line', 1 + g %% 60, 'severity', 'medium',
                                   'message', 'utcnow() returns a naive datetime'),
                jsonb_build_object('line', 1 + h %% 60, 'severity', 'low',
                                   'message', 'the reminder body is built for an empty list')))
         WHEN handed_in THEN jsonb_build_object('summary', 'looks fine')
         END,
    budget,
    CASE WHEN assigned THEN %(price)s END,
    %(owner)s, NULL,
    CASE WHEN assigned THEN some_agent END,
    direct,
    CASE WHEN direct THEN NULL ELSE created END,
    CASE WHEN direct THEN 0 ELSE 1 END,
    NULL, '[]'::jsonb, NULL, NULL,
    holds.id,
    CASE WHEN started THEN 'sbx_' || substr(md5(tid), 1, 24) ELSE '' END,
    0,
    CASE WHEN status <> 'failed' THEN %(price)s END,
    CASE WHEN status = 'refunded' THEN %(price)s ELSE 0 END,
    CASE WHEN status <> 'failed' THEN 60 + h %% 41 WHEN reason = 'quality_gate' THEN h %% 50 END,
    CASE WHEN handed_in THEN jsonb_build_array(
            'substantive: 3 keys with content', 'detail: 2 findings with line numbers',
            'code_review: 2 lines found in the code reviewed',
            'execution time within the expected range')
         ELSE '[]'::jsonb END,
    CASE WHEN handed_in AND h %% 3 = 0 THEN 70 + h %% 30 END,
    CASE WHEN handed_in THEN 4000 + h * 37 END,
    reason,
    CASE reason WHEN '' THEN ''
        WHEN 'cancelled' THEN 'cancelled by the caller'
        WHEN 'timeout' THEN 'execution exceeded 3600 s'
        WHEN 'execution_error' THEN 'the test suite crashed: ModuleNotFoundError: No module named '
                                    || '''billing.mailers'''
        WHEN 'quality_gate' THEN 'quality score ' || h %% 50 || ' is below 60'
        ELSE 'every agent that takes code_review costs more than maxBudget ' || budget END,
    CASE WHEN status = 'refunded' THEN 'down' WHEN status = 'completed' AND h %% 10 = 0 THEN 'up'
         ELSE '' END,
    CASE WHEN status = 'refunded' OR (status = 'completed' AND h %% 10 = 0)
         THEN finished_at + interval '5 minutes' END,
    created,
    CASE WHEN status = 'refunded' OR (status = 'completed' AND h %% 10 = 0)
         THEN finished_at + interval '5 minutes' ELSE finished_at END,
    CASE WHEN assigned THEN created + make_interval(secs => 1 + h %% 5) END,
    CASE WHEN started THEN started_at END,
    CASE WHEN status <> 'failed' THEN finished_at END,
    finished_at
FROM shaped JOIN holds ON holds.subject = shaped.tid
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/list", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks-small", type=int, default=10_000)
    parser.add_argument("--tasks-large", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300, help="timed, of each request")
    parser.add_argument("--warmup", type=int, default=30, help="untimed, of each request")
    parser.add_argument("--status", default="failed", help="the filtered request's status")
    parser.add_argument("--page", type=int, default=50, help="the later page's number")
    parser.add_argument(
        "--workers", type=int, help="WEB_CONCURRENCY for the web line (default: the Procfile's)"
    )
    parser.add_argument("--web", help="another web command to measure (default: the Procfile's)")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_LIST_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--explain", action="store_true", help="print the endpoint's plans")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not 100 <= args.tasks_small < args.tasks_large <= 5_000_000:
        parser.error("need 100 <= --tasks-small < --tasks-large <= 5,000,000")
    if not 10 <= args.requests <= 5000 or not 0 <= args.warmup <= 1000:
        parser.error("--requests is 10..5000 and --warmup 0..1000")
    if args.page < 2 or args.page * 20 > args.tasks_small:
        parser.error("--page must be 2 or more and within the small size's pages of 20")
    if args.status not in ("submitted", "completed", "failed", "refunded"):
        parser.error("--status is one of submitted, completed, failed, refunded")
    return args


# The database


def database_fresh(db: dict) -> None:
    """This benchmark's own database, created again; any other is only created if missing."""
    import psycopg
    from psycopg import sql

    if "bench_list" not in db["NAME"]:
        database_create_if_missing(db)
        return
    with psycopg.connect(dbname="postgres", autocommit=True, **server_params(db)) as conn:
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db["NAME"])))
        except psycopg.errors.ObjectInUse:
            raise Refused(
                f"database {db['NAME']} is in use: is another bench/list running?"
            ) from None
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))


def tasks_of(owner) -> int:
    from tasks.models import Task

    return Task.objects.filter(caller_owner=owner).count()


def live_submit(owner, agents: list[str], count: int) -> None:
    """``count`` real direct hires, waiting in ``submitted`` with their budgets held."""
    from city.identity.principals import Principal
    from tasks import services

    for i in range(count):
        services.task_submit(
            principal=Principal(owner=owner),
            task_type="code_review",
            input={"description": f"Review the nightly export job ({i})", "code": CODE[:800]},
            max_budget=LIVE_BUDGET,
            agent_id=agents[i % len(agents)],
        )


def bulk_load(
    owner, agents: list[str], first: int, count: int, salt: str, origin
) -> tuple[float, float]:
    """Rows ``first`` .. ``first + count - 1`` of this run's history, with their holds, then
    their completed tasks' money (see the module's docstring). Returns the seconds the rows
    and the money took, and the seconds ``VACUUM (ANALYZE)`` took."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.db.models import Sum

    from credits import services as ledger
    from credits.models import Account, Hold
    from tasks.models import Task

    started = time.perf_counter()
    price = api_ceiling.PRICE
    accounts = {a.kind: a.pk for a in Account.objects.filter(owner=owner)}
    earnings = dict(
        Account.objects.filter(agent_id__in=agents, kind=Account.Kind.EARNINGS).values_list(
            "agent_id", "pk"
        )
    )
    last_hold = Hold.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for start in range(first, first + count, CHUNK):
        stop = min(start + CHUNK, first + count) - 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                LOAD_SQL,
                {
                    "salt": salt,
                    "origin": origin,
                    "spacing": SPACING_SECONDS,
                    "first": start,
                    "last": stop,
                    "agents": agents,
                    "earnings": [earnings[a] for a in agents],
                    "pool": accounts[Account.Kind.POOL],
                    "escrow": accounts[Account.Kind.ESCROW],
                    "owner": owner.pk,
                    "price": price,
                    "fee": price * settings.PLATFORM_FEE_BPS // 10000,
                    "code": CODE,
                },
            )
            if cursor.rowcount != stop - start + 1:
                raise RuntimeError(f"loaded {cursor.rowcount} tasks, not {stop - start + 1}")
    # What the completed tasks were charged, per agent, moved as one capture each.
    charged = (
        Hold.objects.filter(pk__gt=last_hold, status=Hold.Status.CAPTURED, refunded=0)
        .values("payee__agent_id")
        .annotate(amount=Sum("charged"))
        .values_list("payee__agent_id", "amount")
        .order_by("payee__agent_id")
    )
    for agent_id, amount in charged:
        reference = f"bench-list:{salt}:{first}:{agent_id}"
        hold = ledger.hold_place(owner=owner, amount=amount, reference=reference)
        ledger.hold_capture(hold=hold, price=amount, payee_id=agent_id)
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        for model in (Task, Hold):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
    return loaded - started, time.perf_counter() - loaded


def expected_totals(owner, status: str, agent_id: str) -> dict[str, int]:
    from django.db.models import Q

    from tasks.models import Task

    mine = Task.objects.filter(caller_owner=owner)
    agents = Task.objects.filter(Q(caller_agent_id=agent_id) | Q(agent_id=agent_id))
    return {
        "all": mine.count(),
        status: mine.filter(status=status).count(),
        "agent": agents.count(),
    }


def busiest_agent(agents: list[str]) -> str:
    from django.db.models import Count

    from tasks.models import Task

    top = (
        Task.objects.filter(agent_id__in=agents)
        .values("agent_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "agent_id")
        .first()
    )
    return top["agent_id"] if top else agents[0]


# Measuring


def requests_of(args) -> list[tuple[str, dict]]:
    return [
        ("default", {}),
        ("status", {"status": args.status}),
        ("page", {"page": args.page}),
        ("agent", {}),
    ]


def _total_key(name: str, params: dict) -> str:
    return "agent" if name == "agent" else params.get("status", "all")


def measure(port: int, tokens: dict[str, str], args, totals: dict[str, int]):
    """Latencies in ms per request kind, and what went wrong. ``tokens``: the owner's secret,
    and the agent's under ``agent``."""
    import httpx

    kinds = requests_of(args)
    latencies: dict[str, list[float]] = {name: [] for name, _ in kinds}
    errors: list[str] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for n in range(args.warmup + args.requests):
            for name, params in kinds:
                secret = tokens["agent" if name == "agent" else "owner"]
                headers = {"Authorization": f"Bearer {secret}"}
                began = time.perf_counter()
                response = client.get("/api/v1/tasks", params=params, headers=headers)
                elapsed = (time.perf_counter() - began) * 1000
                if n >= args.warmup:
                    latencies[name].append(elapsed)
                problem = _check(response, name, params, totals)
                if problem:
                    errors.append(problem)
    return latencies, errors


def _check(response, name: str, params: dict, totals: dict[str, int]) -> str | None:
    if response.status_code != 200:
        return f"{name}: {response.status_code} {response.text[:200]}"
    body = response.json()
    total = totals[_total_key(name, params)]
    page = params.get("page", 1)
    want = {
        "page": page,
        "pageSize": 20,
        "total": total,
        "totalPages": -(-total // 20),
    }
    if body["pagination"] != want:
        return f"{name}: pagination {body['pagination']}, expected {want}"
    if len(body["data"]) != min(20, max(0, total - (page - 1) * 20)):
        return f"{name}: {len(body['data'])} tasks on page {page} of {total}"
    if "status" in params and any(t["status"] != params["status"] for t in body["data"]):
        return f"{name}: a task of another status"
    return None


def summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50), 2),
        "p95_ms": round(percentile(ordered, 0.95), 2),
        "max_ms": round(ordered[-1], 2),
    }


def explain(owner, agent_id: str, args) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the endpoint sends for each request that
    reads tasks (the authentication's and the throttle's aside)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from city.identity import services as identity
    from city.identity.models import Agent

    token = identity.owner_token_issue(owner=owner, name="bench explain").secret
    key = identity.agent_key_issue(agent=Agent.objects.get(pk=agent_id), name="bench").secret
    out = []
    for name, params in requests_of(args):
        secret = key if name == "agent" else token
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="127.0.0.1")
        client.get("/api/v1/tasks", params)  # plans and caches warm
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/v1/tasks", params)
        assert response.status_code == 200, response.content[:300]
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.startswith("SELECT") or "tasks_" not in sql:
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(f"    {row[0]}" for row in cursor.fetchall())
            out.append(f"-- {name} ({query['time']} s): {sql[:400]}\n{plan}")
    return out


def phase(label: int, args, owner, tokens: dict[str, str], server_env: dict) -> dict:
    totals = expected_totals(owner, args.status, tokens["agent_id"])
    server, port = server_start(args, server_env)
    try:
        latencies, errors = measure(port, tokens, args, totals)
    finally:
        server_stop(server)
    result = {
        "tasks": label,
        "totals": totals,
        "requests": {name: summary(values) for name, values in latencies.items()},
        "errors": len(errors),
        "first_errors": errors[:10],
    }
    if args.explain:
        result["explain"] = explain(owner, tokens["agent_id"], args)
    return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        services_ready(args.database_url, args.redis_url, prepare=database_fresh)
        django_setup(args.database_url, args.redis_url)
        migrate()
        tokens, agents, _ = people(1)
        from city.identity import services as identity
        from city.identity.models import Agent, Owner

        agent_keys = {
            agent.pk: identity.agent_key_issue(agent=agent, name="bench list").secret
            for agent in Agent.objects.filter(pk__in=agents)
        }

        owner = Owner.objects.get(user__username="api-0@bench.example.com")
        if tasks_of(owner) + args.tasks_small // LIVE_SHARE > args.tasks_small:
            raise Refused(
                f"owner {owner} already holds {tasks_of(owner)} tasks: use a fresh database "
                "(one whose name contains bench_list is created again at each run)"
            )
    except Refused as exc:
        print(f"bench/list: {exc}", file=sys.stderr)
        return 2

    from django.conf import settings

    api_ceiling.SERVER_LOG = ROOT / "var" / "bench-list-server.log"
    server_env = {
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        # The throttle still counts every request in Redis; the limit is not what is measured.
        "RATE_LIMIT_PER_MINUTE": str(10**9),
    }
    salt = uuid.uuid4().hex[:12]
    origin = datetime.now(UTC)
    loaded, results, load_seconds = 0, [], []
    for target in (args.tasks_small, args.tasks_large):
        live = args.tasks_small // LIVE_SHARE if target == args.tasks_small else 0
        count = target - tasks_of(owner) - live
        load, vacuum = bulk_load(owner, agents, loaded + 1, count, salt, origin)
        load_seconds.append({"load": round(load, 1), "vacuum_analyze": round(vacuum, 1)})
        loaded += count
        live_submit(owner, agents, live)
        if not args.json:
            print(
                f"loaded {count:,} tasks in {load:.1f} s (then VACUUM ANALYZE {vacuum:.1f} s); "
                f"the owner holds {tasks_of(owner):,}",
                flush=True,
            )
        agent_id = busiest_agent(agents)
        secrets_ = {"owner": tokens[0], "agent_id": agent_id, "agent": agent_keys[agent_id]}
        results.append(phase(target, args, owner, secrets_, server_env))
    ok, ledger = ledger_check()

    small, large = results
    before, after = small["requests"]["default"], large["requests"]["default"]
    ratio = after["p95_ms"] / before["p95_ms"]
    line = (
        f"list: p95 {after['p95_ms']} ms at {args.tasks_large:,} tasks = {ratio:.2f}× its "
        f"{before['p95_ms']} ms at {args.tasks_small:,} (p50 {after['p50_ms']} / "
        f"{before['p50_ms']} ms)"
    )
    errors = small["errors"] + large["errors"]
    report = {
        "figure": "list",
        "phases": results,
        "p95_ratio": round(ratio, 3),
        "p95_ratios": {
            name: round(large["requests"][name]["p95_ms"] / small["requests"][name]["p95_ms"], 3)
            for name in small["requests"]
        },
        "load_seconds": load_seconds,
        "web": args.web or api_ceiling.procfile_web(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ledger": ledger,
        "line": line,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{'tasks':>10} {'request':>8} {'total':>10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
        )
        for result in results:
            for name, figures in result["requests"].items():
                total = result["totals"][_total_key(name, dict(requests_of(args))[name])]
                print(
                    f"{result['tasks']:>10,} {name:>8} {total:>10,} {figures['p50_ms']:>8} "
                    f"{figures['p95_ms']:>8} {figures['max_ms']:>8}"
                )
            for problem in result["first_errors"]:
                print(f"    error: {problem}")
            if result["errors"]:
                print(f"    {result['errors']} requests failed")
            for plan in result.get("explain", []):
                print(plan)
        print(
            "p95 ratios: "
            + ", ".join(f"{name} {value}x" for name, value in report["p95_ratios"].items())
        )
        print(f"ledger check: {ledger}")
        print(line)
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
    sys.exit(main(sys.argv[1:]))
