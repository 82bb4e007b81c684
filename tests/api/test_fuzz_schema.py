"""Schemathesis drives a live server from its own /api/schema/, as an owner and as an agent: no
5xx, no response that breaks the schema, the status codes and content types it documents. The
schema links each created task (and dispute) to the operations that take its id, so the stateful
phase works on tasks that exist. A few hundred generated requests per run.

The streams are left out: a 200 stream never ends, so a fuzzer can only time out on it (their
refusals are tested in tests/tasks/test_stream.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.actions import run_to_completion, submit

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def fuzz(server, secret: str, workdir: Path, examples: int = 25) -> tuple[int, str]:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{server.url}/api/schema/",
        "--header",
        f"Authorization: Bearer {secret}",
        "--checks",
        CHECKS,
        "--exclude-path-regex",
        "/stream$",
        "--max-examples",
        str(examples),
        "--seed",
        "20261129",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=900, check=False
    )
    return done.returncode, done.stdout + done.stderr


def generated(output: str) -> int:
    found = re.search(r"(\d+) generated", output)
    assert found, output
    return int(found.group(1))


@pytest.fixture
def seeded(alice, rex):
    """A completed task, so that rex has earnings to sub-hire with and alice a task to rate."""
    run_to_completion(rex, submit(alice, agentId=rex.id)["id"])


@pytest.mark.parametrize("who", ["alice", "rex"])
def test_schemathesis_finds_nothing_as_an_owner_and_as_an_agent(
    start_server, seeded, request, tmp_path, who
):
    if not SCHEMATHESIS.exists():
        pytest.fail(f"schemathesis is not installed beside {sys.executable}")
    server = start_server(RATE_LIMIT_PER_MINUTE="100000")
    person = request.getfixturevalue(who)

    status, output = fuzz(server, person.api.secret, tmp_path)

    assert status == 0, output[-6000:]
    assert generated(output) >= 200, output[-2000:]
