"""The TypeScript SDK (sdk/typescript, ``@city/sdk``) against a live City server process.

The package is built once (``npm ci`` when node_modules is missing, then ``tsc``); each test here
starts the servers, makes the people, and runs one file of Node's own test runner against them,
passing the URLs and secrets in the environment. The assertions live in the Node tests
(``sdk/typescript/test``): this driver only checks that every one of them ran and passed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.factories import make_agent, make_owner

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sdk" / "typescript"
NODE_TIMEOUT_SECONDS = 300


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"CI must run the TypeScript SDK tests: {name} is not on PATH")
        pytest.skip(f"needs {name} (Node.js 20 or later) for the TypeScript SDK tests")
    return path


def _run(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run(command, cwd=PACKAGE, capture_output=True, text=True, **kwargs)
    if run.returncode != 0:
        pytest.fail(f"{what} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    return run


@pytest.fixture(scope="session")
def typescript_package() -> Path:
    """The package, compiled to dist/ (once per session)."""
    node = _tool("node")
    version = _run([node, "--version"], "node --version").stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"the TypeScript SDK needs Node.js 20 or later, not {version}")
    if not (PACKAGE / "node_modules" / ".bin" / "tsc").exists():
        _run([_tool("npm"), "ci", "--no-audit", "--no-fund"], "npm ci", timeout=600)
    _run([node, str(PACKAGE / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "."], "tsc")
    assert (PACKAGE / "dist" / "index.js").exists()
    return PACKAGE


def run_node_tests(test_file: str, env: dict[str, str]) -> str:
    """Runs one test file with ``node --test``; fails with node's output unless all passed."""
    run = subprocess.run(
        [_tool("node"), "--test", "--test-reporter=tap", f"test/{test_file}"],
        cwd=PACKAGE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CITY_")}, **env},
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
    )
    output = run.stdout + run.stderr
    print(output)  # pytest shows it with -rP, and on a failure
    assert run.returncode == 0, f"node --test {test_file} failed:\n{output}"
    counts = {k: int(v) for k, v in re.findall(r"^# (\w+) (\d+)$", run.stdout, re.MULTILINE)}
    assert counts.get("pass", 0) > 0 and counts["pass"] == counts.get("tests"), output
    assert counts.get("skipped") == counts.get("todo") == counts.get("cancelled") == 0, output
    return output


@pytest.fixture
def server(live_city):
    return live_city


def test_every_code_sample_of_the_seed_runs_as_written(typescript_package, server, alice, rex, bob):
    # A type with no rules of its own, so that the seed's complete() sample output (findings as
    # a sentence) can pass the quality check as the seed says it does.
    auditor = make_agent(bob, "auditor", {"security_audit": 2000})

    run_node_tests(
        "samples.test.mjs",
        {
            "CITY_BASE_URL": server.url,
            "CITY_OWNER_TOKEN": alice.token,
            "CITY_API_KEY": rex.key,
            "CITY_AGENT_ID": rex.id,
            "CITY_AUDITOR_API_KEY": auditor.key,
            "CITY_AUDITOR_AGENT_ID": auditor.id,
        },
    )


def test_the_client_calls_errors_retries_and_stream(
    typescript_package, start_server, server, alice, rex, charlie, zed
):
    limited = start_server(RATE_LIMIT_PER_MINUTE="3")
    dora = make_owner("dora@example.com", credits=1000)

    run_node_tests(
        "client.test.mjs",
        {
            "CITY_BASE_URL": server.url,
            "CITY_OWNER_TOKEN": alice.token,
            "CITY_API_KEY": rex.key,
            "CITY_AGENT_ID": rex.id,
            "CITY_OTHER_OWNER_TOKEN": charlie.token,
            "CITY_OTHER_API_KEY": zed.key,
            "CITY_OTHER_AGENT_ID": zed.id,
            "CITY_LIMITED_BASE_URL": limited.url,
            "CITY_LIMITED_OWNER_TOKEN": dora.token,
        },
    )
