"""City's API against the database's own ceiling, measured in the same run on the same machine.

Two figures, one command each (``bench/submit``, ``bench/read``):

- **submit**: ``POST /api/v1/tasks`` (a direct hire, so that no routing job runs) by many owners
  at once, over HTTP with wrk, against pgbench running the submit's hot path statement by
  statement as the ORM sends it: look up the caller's key, lock its accounts, insert the task,
  the hold and its two ledger rows, update the balances, record the events, commit;
- **read**: ``GET /api/v1/tasks/{id}`` against pgbench's key lookup + one task row.

The server is the ``Procfile``'s ``web`` line exactly (``$PORT``, ``$WEB_CONCURRENCY``), with
``DEBUG`` off, on PostgreSQL and Redis (the cache the throttle counts in, the stream's fan-out).
pgbench runs first and last with the same connections and threads as wrk and the two are
averaged: the ratio is against the machine as it was during the run. Owners are many (64 by
default) so that their accounts' row locks do not serialise the writers. A run ends with
``check_ledger``, which must pass.

    bench/submit [--seconds 10] [--connections 8] [--threads 2] [--owners 64] [--json]
    bench/read   [...the same]

The final line is the figure:

    submit: 312 rps = 27.1% of pgbench 1,151 tps (0 errors)

Exit status: 0 when the run had no errors and the ledger checks; 1 if not; 2 if it refused to
run (no PostgreSQL, Redis, wrk or pgbench here, or a database not named for benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_throughput import (
    DEFAULT_DATABASE_URL,
    Refused,
    cpu_model,
    database_create_if_missing,
    ledger_check,
    server_params,
    target_of,
)
from stream import free_port, procfile_web

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SERVER_LOG = ROOT / "var" / "bench-api-server.log"
PRICE = 100
BUDGET = 500
AGENTS = 8

# The hot paths as pgbench runs them (bench/sql/): each statement as the ORM sends it, on tables
# of the same shape as City's (text keys, a JSON input, bigint money), with their indexes.
SQL = Path(__file__).resolve().parent / "sql"
WRK_LUA = Path(__file__).resolve().parent / "wrk.lua"


# wrk's requests: each one as a random owner (its token; its own task for a read).


def parse_args(kind: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"bench/{kind}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, help="WEB_CONCURRENCY for the web line")
    parser.add_argument("--web", help="another web command to measure (default: the Procfile's)")
    return load_options_parsed(
        parser, argv, seconds="per phase (3 phases)", by="wrk's and pgbench's"
    )


def load_options_parsed(parser, argv: list[str], *, seconds: str, by: str) -> argparse.Namespace:
    """``argv`` parsed with the options every pgbench-backed figure takes (``by`` says whose
    connections and threads they are), each checked within its bounds."""
    parser.add_argument("--seconds", type=int, default=10, help=seconds)
    parser.add_argument("--connections", type=int, default=8, help=by)
    parser.add_argument("--threads", type=int, default=2, help=by)
    parser.add_argument("--owners", type=int, default=64)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300 or not 1 <= args.connections <= 256:
        parser.error("--seconds is 1..300 and --connections 1..256")
    if not 1 <= args.owners <= 10_000 or not 1 <= args.threads <= args.connections:
        parser.error("--owners is 1..10000 and --threads 1..connections")
    return args


def load_facts(args) -> dict:
    """What a pgbench-backed figure's report says of its load and of the machine."""
    return {
        "connections": args.connections,
        "threads": args.threads,
        "seconds": args.seconds,
        "owners": args.owners,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
    }


def tools_check() -> None:
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            raise Refused(f"{tool} is needed: apt-get install {tool} (pgbench: postgresql-client)")


def django_setup(database_url: str, redis_url: str) -> None:
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="city.settings",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def database_ready(args) -> dict:
    """The benchmark database (``args.database_url``, guarded), created if missing, Django set
    up on it and on ``args.redis_url``, and migrated."""
    db = target_of(args.database_url)
    database_create_if_missing(db)
    django_setup(args.database_url, args.redis_url)
    migrate()
    return db


def migrate() -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=os.environ.copy(),
        check=True,
    )


def people(owners: int) -> tuple[list[str], list[str], list[str]]:
    """``owners`` funded bench owners with a fresh token and a task each, and the agents they
    hire: (tokens, agent ids, task ids)."""
    from city.identity import services as identity
    from city.identity.models import Agent, Owner
    from city.identity.principals import Principal
    from credits import selectors
    from credits import services as ledger
    from tasks import services as tasks

    operator_email = "api-operator@bench.example.com"
    operator = Owner.objects.filter(user__username=operator_email).first()
    if operator is None:
        operator, _ = identity.owner_create(email=operator_email)
    agents = list(Agent.objects.filter(operator=operator).order_by("name")[:AGENTS])
    while len(agents) < AGENTS:
        agent, _ = identity.agent_create(
            operator=operator,
            name=f"api-bench-{len(agents)}",
            offers={"code_review": PRICE},
            max_concurrent=1_000_000_000,
        )
        ledger.accounts_open(agent=agent)
        agents.append(agent)
    tokens, task_ids = [], []
    for i in range(owners):
        email = f"api-{i}@bench.example.com"
        owner = Owner.objects.filter(user__username=email).first()
        if owner is None:
            owner, _ = identity.owner_create(email=email)
            ledger.accounts_open(owner=owner)
        if selectors.balance_get(owner=owner).available < 10**11:
            ledger.grant_issue(owner=owner, amount=10**12, memo="bench")
        tokens.append(identity.owner_token_issue(owner=owner, name="bench").secret)
        task = tasks.task_submit(
            principal=Principal(owner=owner),
            task_type="code_review",
            input={"description": "Review this snippet", "code": "x = 1"},
            max_budget=BUDGET,
            agent_id=agents[i % AGENTS].pk,
        )
        task_ids.append(task.pk)
    return tokens, [a.pk for a in agents], task_ids


def pgbench(db: dict, script: str, args, **defines: int) -> float:
    """pgbench's transactions per second for ``script`` (its own figure, excluding the initial
    connection time), with ``:owners`` and ``defines`` as its variables. The simple query
    protocol, as Django's psycopg backend sends queries (parameters bound client-side, no
    prepared statements)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
        file.write(script)
    params = server_params(db)
    command = ["pgbench", "-n", "-f", file.name, "-D", f"owners={args.owners}"]
    for name, value in defines.items():
        command += ["-D", f"{name}={value}"]
    command += ["-c", str(args.connections)]
    command += ["-j", str(args.threads), "-T", str(args.seconds), "-M", "simple"]
    command += ["-h", str(params.get("host", "127.0.0.1")), "-p", str(params.get("port", 5432))]
    command += ["-U", params.get("user", "postgres"), db["NAME"]]
    env = {**os.environ, "PGPASSWORD": params.get("password", "")}
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    os.unlink(file.name)
    found = re.search(r"tps = ([0-9.]+) \(without initial connection", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if out.returncode != 0 or not found or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    return float(found.group(1))


def pgbench_schema(db: dict, tokens: list[str], task_ids: list[str]) -> None:
    """Copies of City's tables with the run's rows (bench/sql/schema.sql), and ``bench_keys``:
    owner n's secret, task, accounts and the agent it hires (with its earnings account), as
    pgbench's scripts pick them."""
    import psycopg

    from city.identity.ids import secret_hash
    from credits.models import Account
    from tasks.models import Task

    keys = []
    for n, (token, task_id) in enumerate(zip(tokens, task_ids, strict=True), start=1):
        task = Task.objects.get(pk=task_id)
        accounts = dict(
            Account.objects.filter(owner_id=task.caller_owner_id).values_list("kind", "pk")
        )
        keys.append(
            (
                n,
                secret_hash(token),
                task.caller_owner_id,
                task_id,
                accounts["pool"],
                accounts["escrow"],
                task.agent_id,
                Account.objects.get(agent_id=task.agent_id, kind=Account.Kind.EARNINGS).pk,
            )
        )
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **server_params(db)) as conn:
        schema = (SQL / "schema.sql").read_text()
        for statement in schema.split(";\n"):
            statement = "\n".join(
                line for line in statement.splitlines() if not line.startswith("--")
            ).strip()
            if statement.startswith("VACUUM"):
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO bench_keys VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", keys
                    )
            if statement:
                conn.execute(statement)


def server_start(args, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """The Procfile's web command (or ``--web``), as honcho would run it."""
    port = free_port()
    SERVER_LOG.parent.mkdir(exist_ok=True)
    log = SERVER_LOG.open("w")
    command = args.web or procfile_web()
    env = {**os.environ, **env, "PORT": str(port)}
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Refused(f"the server exited at start: see {SERVER_LOG}")
        try:
            # Ready when a worker answers (a 401 without a key is an answer).
            httpx.get(f"http://127.0.0.1:{port}/api/v1/credits", timeout=2)
            return process, port
        except httpx.HTTPError:
            time.sleep(0.2)
    raise Refused("the server did not start within 60 s")


def server_stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wrk(kind: str, port: int, tokens, agents, tasks, args) -> dict:
    lua = WRK_LUA.read_text()
    for name, value in (("TOKENS", _lua(tokens)), ("AGENTS", _lua(agents)), ("TASKS", _lua(tasks))):
        lua = lua.replace(f"@{name}@", value)
    lua = lua.replace("@KIND@", kind).replace("@BUDGET@", str(BUDGET))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(lua)
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    command += ["-d", f"{args.seconds}s", "--latency", "-s", file.name]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=600
    )
    os.unlink(file.name)
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out.stdout)
    if out.returncode != 0 or not rps:
        raise RuntimeError(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    socket_errors = re.search(r"Socket errors: (.*)", out.stdout)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out.stdout, re.M))
    return {
        "rps": float(rps.group(1)),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "p50": latency.get("50"),
        "p99": latency.get("99"),
    }


def _lua(values: list[str]) -> str:
    return "{" + ", ".join(json.dumps(v) for v in values) + "}"


def main(kind: str, argv: list[str]) -> int:
    args = parse_args(kind, argv)
    try:
        tools_check()
        db = database_ready(args)
        import redis

        try:
            redis.Redis.from_url(args.redis_url).ping()
        except redis.RedisError as exc:
            raise Refused(f"Redis is needed at {args.redis_url}: {exc}") from None
        tokens, agents, tasks = people(args.owners)
        pgbench_schema(db, tokens, tasks)
    except Refused as exc:
        print(f"bench/{kind}: {exc}", file=sys.stderr)
        return 2
    script = (SQL / f"{kind}.sql").read_text()
    from django.db import connection

    connection.close()
    before = pgbench(db, script, args)
    server, port = server_start(args, {})
    try:
        wrk(kind, port, tokens, agents, tasks, _brief(args))
        http = wrk(kind, port, tokens, agents, tasks, args)
    finally:
        server_stop(server)
    after = pgbench(db, script, args)
    ceiling = (before + after) / 2
    ok, ledger = ledger_check()
    ledger = "ok" if ok else ledger
    report = {
        "figure": kind,
        "rps": round(http["rps"], 1),
        "pgbench_tps": round(ceiling, 1),
        "pgbench_first_last": [round(before, 1), round(after, 1)],
        "ratio": round(http["rps"] / ceiling, 4),
        "errors": http["errors"],
        "socket_errors": http["socket_errors"],
        "latency_p50": http["p50"],
        "latency_p99": http["p99"],
        "web": args.web or procfile_web(),
        "web_concurrency": args.workers or int(os.environ.get("WEB_CONCURRENCY") or 2),
        **load_facts(args),
        "ledger": ledger,
    }
    line = (
        f"{kind}: {http['rps']:,.0f} rps = {100 * report['ratio']:.1f}% of pgbench "
        f"{ceiling:,.0f} tps ({http['errors']} errors)"
    )
    if args.json:
        print(json.dumps({**report, "line": line}))
    else:
        print(
            f"pgbench {before:,.0f} then {after:,.0f} tps; HTTP p50 {http['p50']} p99 "
            f"{http['p99']}, {args.connections} connections, {args.threads} threads, "
            f"{args.seconds} s; ledger {ledger}"
        )
        print(line)
    return 0 if ok and not http["errors"] and not http["socket_errors"] else 1


def _brief(args) -> argparse.Namespace:
    """A two-second warm-up with the same load: workers import, pools fill, caches warm."""
    return argparse.Namespace(**{**vars(args), "seconds": 2})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
