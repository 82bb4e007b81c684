"""What each step of a task's life costs in the web process, as a multiple of a submit.

``bench/lifecycle`` says how many tasks complete per second against the submit rate; this says
why, one step at a time and without the noise of a loaded machine. In one process, through
Django's test client (the whole middleware chain, authentication, rate limit, the view, the
response), on PostgreSQL and Redis with ``DEBUG`` off, it runs ``--tasks`` tasks one after the
other as ``bench/lifecycle``'s pipelines do: submit (a direct hire), provision a sandbox, mark it
executing, complete; then the quality check's job as a worker runs it (``check_quality``, with
the sandbox's cleanup after its commit; not the broker's hops). Each step is timed in the CPU
time of the thread that runs it (PostgreSQL's and Redis's work is theirs, not counted); the
first fifth of the tasks warm up and are not counted.

The final line is the figure: what a completed task costs here in submits, the steps after the
submit summed over the submit's own median, all measured in the same run:

    steps: the agent's three requests and the quality check = 3.3 submits (submit 5.72 ms)

``bench/lifecycle`` can reach half the submit rate only when that figure is near one. On a
machine whose speed drifts, compare two versions by this figure, not by milliseconds: the
submit, measured in the same run, is the yardstick.

    bench/steps [--tasks 300] [--json]

Exit status: 0, or 2 if it refused to run (no PostgreSQL or Redis here, or a database whose name
does not contain ``bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_ceiling import BUDGET, django_setup, migrate, people
from ledger_throughput import Refused, cpu_model, services_ready

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/city_bench_lifecycle"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
STEPS = ("submit", "sandbox", "executing", "complete", "quality check")
INPUT = {"description": "Review this snippet", "code": "x = 1"}
OUTPUT = {
    "summary": "One finding: x is assigned but never used.",
    "findings": [{"line": 1, "severity": "low", "message": "unused name x"}],
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/steps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300, help="run one after the other")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not 10 <= args.tasks <= 10_000:
        parser.error("--tasks is 10..10000")
    return args


def run(args) -> dict[str, list[float]]:
    from django.test import Client

    from city.identity import services as identity
    from city.identity.models import Agent
    from tasks import jobs
    from tasks.models import Task

    tokens, agent_ids, _ = people(1)
    agent = Agent.objects.get(pk=agent_ids[0])
    owner = {"HTTP_AUTHORIZATION": f"Bearer {tokens[0]}"}
    key = {"HTTP_AUTHORIZATION": f"Bearer {identity.agent_key_issue(agent=agent).secret}"}
    client = Client(SERVER_NAME="127.0.0.1")
    spent: dict[str, list[float]] = {step: [] for step in STEPS}

    def step(name: str, status: int, path: str, body: dict, headers: dict) -> dict:
        started = time.thread_time()
        response = client.post(path, body, content_type="application/json", **headers)
        spent[name].append(time.thread_time() - started)
        if response.status_code != status:
            raise RuntimeError(f"{name}: {response.status_code} {response.content[:200]!r}")
        return response.json()

    submit = {"taskType": "code_review", "maxBudget": BUDGET, "agentId": agent.pk, "input": INPUT}
    for _ in range(args.tasks):
        task_id = step("submit", 201, "/api/v1/tasks", submit, owner)["id"]
        at = f"/api/v1/tasks/{task_id}"
        sandbox = step("sandbox", 201, f"{at}/sandbox", {}, key)["sandboxId"]
        step("executing", 200, f"{at}/executing", {"sandboxId": sandbox}, key)
        step("complete", 200, f"{at}/complete", {"output": OUTPUT, "executionTimeMs": 5}, key)
        started = time.thread_time()
        # The job itself, run here as Celery runs it on a worker (so it cleans up the sandbox
        # after its commit, and queues nothing more): the broker's hops are not counted.
        jobs.check_quality.apply((task_id,), throw=True)
        spent["quality check"].append(time.thread_time() - started)
        task = Task.objects.get(pk=task_id)
        live = task.sandboxes.filter(status="live").exists()
        if task.status != "completed" or live:
            raise RuntimeError(f"quality check: the task is {task.status}, sandbox live: {live}")
    return spent


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        services_ready(args.database_url, args.redis_url)
    except Refused as exc:
        print(f"bench/steps: {exc}", file=sys.stderr)
        return 2
    # Its own queue: the quality checks the requests enqueue are run here, not by a worker.
    os.environ["CELERY_QUEUE"] = f"bench-steps-{os.getpid()}"
    django_setup(args.database_url, args.redis_url)
    migrate()
    try:
        spent = run(args)
    finally:
        import redis

        redis.Redis.from_url(args.redis_url).delete(os.environ["CELERY_QUEUE"])
    counted = {name: values[len(values) // 5 :] for name, values in spent.items()}
    medians = {name: statistics.median(values) * 1000 for name, values in counted.items()}
    after = sum(ms for name, ms in medians.items() if name != "submit")
    submits = after / medians["submit"]
    line = (
        f"steps: the agent's three requests and the quality check = {submits:.1f} submits "
        f"(submit {medians['submit']:.2f} ms)"
    )
    if args.json:
        print(json.dumps({"median_ms": medians, "submits": submits, "line": line}))
        return 0
    print(f"{len(counted['submit'])} tasks counted of {args.tasks}; {cpu_model()}")
    print("step            median ms   mean ms   in submits")
    for name, ms in medians.items():
        mean = statistics.mean(counted[name]) * 1000
        print(f"{name:15s} {ms:9.2f} {mean:9.2f} {ms / medians['submit']:12.2f}")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
