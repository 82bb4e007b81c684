"""The live stream under many open connections, against one stream held alone, in the same run.

One ASGI server process (the Procfile's ``web`` line with one worker), on PostgreSQL and Redis
(the production fan-out). For each stream count (1, then N; default 1000) a client process
opens that many ``GET /api/v1/stream`` connections, one per owner; this process then submits
tasks (direct hires, through ``tasks.services``, as a web request would), spread over those
owners, each of which sends two events (``submit``, ``assign``) to exactly one stream. It
reports:

- streams held (opened and still open at the end),
- events delivered / expected,
- delivery latency p50 and p99: from the moment the recording transaction committed and its
  events were published, to the moment the client read them off the socket,
- the server's memory per open stream (its resident set size after opening them, less before,
  over N).

The final line compares the N-stream p99 with the single stream's:

    stream: 1000 streams held, 400/400 events, p99 9.1 ms = 1.3x the single stream's 7.0 ms,
    38 KiB per stream

    bench/stream [--streams 1000] [--events 200] [--database-url URL] [--json]

Exit status: 0 when every event was delivered to every stream and ``check_ledger`` passed; 1 if
not; 2 if it refused to run (no PostgreSQL or Redis here, a database not named for benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_throughput import (
    DEFAULT_DATABASE_URL,
    Refused,
    database_create_if_missing,
    target_of,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
OPEN_CONCURRENCY = 50  # connections being opened at once by the client
DELIVERY_DEADLINE = 60.0  # seconds to wait for the last event once all are sent
BUDGET = 3000
PRICE = 1000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams (max 5000)")
    parser.add_argument("--events", type=int, default=200, help="tasks submitted per phase")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not 1 <= args.streams <= 5000 or not 1 <= args.events <= 5000:
        parser.error("--streams and --events must be between 1 and 5000")
    return args


# The client: a process of its own, so that reading a thousand sockets does not share a GIL
# with the driver or the server.


async def _follow(host, port, token, opened: asyncio.Event, received: list, failures: list):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        failures.append(f"connect: {exc}")
        opened.set()
        return
    writer.write(
        (
            "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        failures.append(status.decode(errors="replace").strip())
        opened.set()
        return
    while (await reader.readline()) not in (b"\r\n", b""):
        pass  # the headers
    buffer = ""
    try:
        while True:  # chunked transfer encoding, each chunk some SSE text
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                break
            chunk = (await reader.readexactly(size + 2))[:-2].decode()
            now = time.time()
            buffer += chunk
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                if block.startswith("retry:"):
                    opened.set()
                fields = dict(
                    line.split(": ", 1)
                    for line in block.split("\n")
                    if line[:5] in ("event", "data:")
                )
                if fields.get("event") == "status":
                    data = json.loads(fields["data"])
                    received.append((data["taskId"], data["type"], now))
    except (asyncio.IncompleteReadError, ConnectionError):
        failures.append("closed by the server")
    finally:
        opened.set()
        writer.close()


def client_main(host: str, port: int, tokens: list[str], pipe) -> None:
    """Open a stream per token, say so, then collect events until told to stop."""

    async def run() -> None:
        received: list = []
        failures: list = []
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        tasks = []

        async def one(token: str) -> None:
            opened = asyncio.Event()
            async with gate:
                tasks.append(
                    asyncio.create_task(_follow(host, port, token, opened, received, failures))
                )
                await opened.wait()

        await asyncio.gather(*(one(token) for token in tokens))
        pipe.send((len(tokens) - len(failures), failures[:5]))
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, pipe.recv) == "count":
            pipe.send(len(received))
        held = sum(1 for task in tasks if not task.done())
        pipe.send((held, received, failures[:5]))
        for task in tasks:
            task.cancel()

    asyncio.run(run())


# The server, and what it holds.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_web() -> str:
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    return line.removeprefix("web:").strip()


SERVER_LOG = ROOT / "var" / "bench-stream-server.log"


def server_start(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """The Procfile's web command, one worker (one process holds every stream); what it prints
    goes to var/bench-stream-server.log."""
    port = free_port()
    SERVER_LOG.parent.mkdir(exist_ok=True)
    log = SERVER_LOG.open("w")
    command = procfile_web().replace("$PORT", str(port)).replace("${WEB_CONCURRENCY:-2}", "1")
    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        cwd=ROOT,
        env={**os.environ, **env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                raise Refused("the server exited at start") from None
            time.sleep(0.1)
    raise Refused("the server did not start within 60 s")


def _status(pid: int, field: str) -> int:
    """A /proc status figure summed over a process and its children (uvicorn's worker)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1])
    return total


def rss_kib(pid: int) -> int:
    return _status(pid, "VmRSS")


# The driver.


def django_setup(database_url: str, redis_url: str, channel: str) -> None:
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        STREAM_REDIS_CHANNEL=channel,
        CELERY_QUEUE=f"{channel}:jobs",
        DJANGO_SETTINGS_MODULE="city.settings",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def people(count: int):
    """``count`` funded bench owners with a fresh token each, and one agent they hire."""
    from city.identity import services as identity
    from city.identity.models import Agent, Owner
    from credits import selectors
    from credits import services as ledger

    operator_email = "stream-operator@bench.example.com"
    operator = Owner.objects.filter(user__username=operator_email).first()
    if operator is None:
        operator, _ = identity.owner_create(email=operator_email)
    agent = Agent.objects.filter(operator=operator, name="stream-bench").first()
    if agent is None:
        agent, _ = identity.agent_create(
            operator=operator, name="stream-bench", offers={"code_review": PRICE}, max_concurrent=10
        )
    tokens, owners = [], []
    for i in range(count):
        email = f"stream-{i}@bench.example.com"
        owner = Owner.objects.filter(user__username=email).first()
        if owner is None:
            owner, issued = identity.owner_create(email=email)
        else:
            issued = identity.owner_token_issue(owner=owner, name="bench")
        ledger.accounts_open(owner=owner)
        if selectors.balance_get(owner=owner).available < BUDGET * 50:
            ledger.grant_issue(owner=owner, amount=BUDGET * 1000)
        owners.append(owner)
        tokens.append(issued.secret)
    return owners, tokens, agent


PUBLISHED: dict[str, float] = {}  # task id -> when its events were published


def timed(publish):
    """The stream's ``tasks.events`` hook, noting when each task's events go out."""

    def publish_timed(recorded) -> None:
        now = time.time()
        for row in recorded:
            PUBLISHED.setdefault(row.task_id, now)
        publish(recorded)

    return publish_timed


def phase(n: int, args, port: int, server_pid: int, owners, tokens, agent) -> dict:
    from city.identity.principals import Principal
    from tasks import services

    rss_before = rss_kib(server_pid)
    parent, child = multiprocessing.Pipe()
    client = multiprocessing.Process(
        target=client_main, args=("127.0.0.1", port, tokens[:n], child), daemon=True
    )
    client.start()
    opened, open_failures = parent.recv()
    rss_open = rss_kib(server_pid)
    threads_open = _status(server_pid, "Threads")

    submitted = []
    for i in range(args.events):
        owner = owners[i % n]
        task = services.task_submit(
            principal=Principal(owner=owner),
            task_type="code_review",
            input={"description": f"bench {i}"},
            max_budget=BUDGET,
            agent_id=agent.pk,
        )
        submitted.append((owner, task.pk))
    expected = 2 * len(submitted)

    # Wait for delivery with a deadline, asking the client how far it got.
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while time.monotonic() < deadline:
        parent.send("count")
        if parent.recv() >= expected:
            break
        time.sleep(0.1)
    parent.send("stop")
    held, received, failures = parent.recv()
    client.join(timeout=10)

    for owner, tid in submitted:  # give the holds back; nobody listens any more
        services.task_cancel(principal=Principal(owner=owner), task_id=tid)

    latencies = sorted((at - PUBLISHED[tid]) * 1000 for tid, _type, at in received)
    return {
        "streams": n,
        "opened": opened,
        "held": held,
        "delivered": len(received),
        "expected": expected,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(latencies[int((len(latencies) - 1) * 0.99)], 2) if latencies else None,
        "kib_per_stream": round((rss_open - rss_before) / n, 1),
        "server_threads": threads_open,
        "failures": open_failures + failures,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        target_of(args.database_url)
        import redis

        try:
            redis.Redis.from_url(args.redis_url).ping()
        except redis.RedisError as exc:
            raise Refused(f"this benchmark needs Redis at {args.redis_url}: {exc}") from None
        database_create_if_missing(target_of(args.database_url))
    except Refused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2

    # A thousand sockets on each side, and the server inherits the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.streams + 256)), hard))
    channel = f"bench-stream-{uuid.uuid4().hex[:8]}"
    django_setup(args.database_url, args.redis_url, channel)
    from django.conf import settings
    from django.core.management import call_command

    from tasks import events, stream

    call_command("migrate", verbosity=0)
    owners, tokens, agent = people(args.streams)
    # A benchmark may reach inside: the hook list holds the stream's publish by reference.
    hooks = events._hooks
    hooks[hooks.index(stream.publish)] = timed(stream.publish)
    server, port = server_start(
        {
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "STREAM_REDIS_CHANNEL": channel,
            "CELERY_QUEUE": f"{channel}:jobs",
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    try:
        results = [
            phase(n, args, port, server.pid, owners, tokens, agent) for n in (1, args.streams)
        ]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    import io

    audit = io.StringIO()
    try:
        call_command("check_ledger", stdout=audit)
        ledger_ok = True
    except SystemExit:
        ledger_ok = False

    single, many = results
    ratio = many["p99_ms"] / single["p99_ms"] if single["p99_ms"] and many["p99_ms"] else None
    complete = all(r["delivered"] == r["expected"] and r["held"] == r["streams"] for r in results)
    if args.json:
        print(json.dumps({"phases": results, "p99_ratio": ratio, "ledger_ok": ledger_ok}))
    else:
        print(
            f"{'streams':>8} {'held':>6} {'delivered':>11} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'KiB/stream':>11} {'threads':>8}"
        )
        for r in results:
            print(
                f"{r['streams']:>8} {r['held']:>6} {r['delivered']:>5}/{r['expected']:<5} "
                f"{r['p50_ms']:>8} {r['p99_ms']:>8} {r['kib_per_stream']:>11} "
                f"{r['server_threads']:>8}"
            )
            if r["failures"]:
                print(f"         failures: {r['failures']}")
        print(audit.getvalue().strip() or "ledger check failed")
        print(
            f"stream: {many['held']} streams held, {many['delivered']}/{many['expected']} events, "
            f"p99 {many['p99_ms']} ms = {ratio:.1f}x the single stream's {single['p99_ms']} ms, "
            f"{many['kib_per_stream']:.0f} KiB per stream"
        )
    return 0 if complete and ledger_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
