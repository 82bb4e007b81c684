"""The database's own bound on ``bench/lifecycle``: a completed task's SQL against a submit's.

``bench/lifecycle`` divides the tasks completed per second by the submits per second. A
completed task is a submit and then more work, in the database too: the agent's three requests
(a sandbox, executing, complete) and the quality check's job (the capture, the task completed)
and the sandbox's cleanup. This runs that work as pgbench scripts, statement by statement as
City sends it with its callers' principals kept, so with no key lookup (``bench/sql/submit.sql``
but its first statement, then ``bench/sql/lifecycle.sql``: every write in the transaction City
makes it in, every lock), on copies of City's tables holding the run's rows, with the same
connections, and divides the two rates. Were City's own code free, the database alone would let
``bench/lifecycle`` reach this ratio and no more.

The scripts run submit, lifecycle, lifecycle, submit, and each rate is the mean of its two runs,
so that a machine speeding up or slowing down during the run weighs on both alike. The copies
have the originals' columns, defaults, checks and indexes but neither their triggers (the task
tally, the ledger's balance check) nor their foreign keys, as for ``bench/submit``'s ceiling:
both scripts are cheaper than City's real statements, the lifecycle's more so (City's tally
trigger fires on each of its four task writes, against the submit's one), so with them the bound
is lower still.

The final line is the figure:

    ceiling: a completed task's SQL 158 tps = 22.2% of a submit's 712 tps (8 connections)

    bench/ceiling [--seconds 10] [--connections 8] [--threads 2] [--owners 64] [--json]

Exit status: 0; 2 if it refused to run (no PostgreSQL or pgbench here, or a database whose name
does not contain ``bench``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_ceiling import (
    SQL,
    database_ready,
    load_facts,
    load_options_parsed,
    people,
    pgbench,
    pgbench_schema,
)
from ledger_throughput import Refused


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/ceiling", description=__doc__.split("\n\n")[0])
    return load_options_parsed(parser, argv, seconds="per pgbench run (4 runs)", by="pgbench's")


def principals_kept(script: str) -> str:
    """``script`` as City sends it once its web process keeps the caller's principal: without
    the key lookup (``bench/submit`` keeps it: its ceiling is the issue's, lookup included)."""
    return "\n".join(line for line in script.splitlines() if "FROM bench_apisecret" not in line)


def measure(db: dict, args) -> dict:
    """Seed ``args.owners`` owners (the first ones are ``bench/lifecycle``'s pipelines' owners),
    copy the tables, run the two scripts as submit, lifecycle, lifecycle, submit, and return
    the rates, the ratio and the figure's line."""
    from django.conf import settings
    from django.db import connection

    from credits.services import fee_accounts_open

    tokens, _, tasks = people(args.owners)
    fee_accounts_open()  # the captures' fee accounts, which City opens at its first fee
    pgbench_schema(db, tokens, tasks)
    connection.close()
    scripts = {
        "submit": principals_kept((SQL / "submit.sql").read_text()),
        "lifecycle": (SQL / "lifecycle.sql").read_text(),
    }
    runs = {"submit": [], "lifecycle": []}
    for kind in ("submit", "lifecycle", "lifecycle", "submit"):
        runs[kind].append(pgbench(db, scripts[kind], args, fee_shards=settings.FEE_ACCOUNT_SHARDS))
    submit = sum(runs["submit"]) / 2
    lifecycle = sum(runs["lifecycle"]) / 2
    ratio = lifecycle / submit
    return {
        "submit_tps": round(submit, 1),
        "lifecycle_tps": round(lifecycle, 1),
        "runs": {kind: [round(tps, 1) for tps in rates] for kind, rates in runs.items()},
        "ratio": round(ratio, 4),
        "line": (
            f"ceiling: a completed task's SQL {lifecycle:,.0f} tps = {100 * ratio:.1f}% of a "
            f"submit's {submit:,.0f} tps ({args.connections} connections)"
        ),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        tool_check()
        db = database_ready(args)
    except Refused as exc:
        print(f"bench/ceiling: {exc}", file=sys.stderr)
        return 2
    report = {
        "figure": "ceiling",
        **measure(db, args),
        **load_facts(args),
    }
    if args.json:
        print(json.dumps(report))
    else:
        runs = report["runs"]
        print(
            f"pgbench, {args.connections} connections, {args.threads} threads, {args.seconds} s "
            f"a run: submit {runs['submit'][0]:,.0f} then {runs['submit'][1]:,.0f} tps; "
            f"lifecycle {runs['lifecycle'][0]:,.0f} then {runs['lifecycle'][1]:,.0f} tps"
        )
        print(report["line"])
    return 0


def tool_check() -> None:
    if shutil.which("pgbench") is None:
        raise Refused("pgbench is needed: apt-get install postgresql-client")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
