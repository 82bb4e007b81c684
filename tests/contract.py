"""What the contract (``shared/API.md``, beside this repository) says, read from the contract
itself: a test that compares the server with these compares it with API.md, not with a copy."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import pytest

API_MD = Path(__file__).resolve().parent.parent.parent / "shared" / "API.md"


def _api_md() -> str:
    if not API_MD.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must have the contract at {API_MD}")
        pytest.skip(f"the contract is not at {API_MD}")
    return API_MD.read_text()


def task_example() -> dict:
    """API.md's example task (its ``createdAt``... line abbreviates four keys)."""
    text = _api_md()
    block = re.search(r"## The task\s+```json\n(.*?)\n```", text, re.S).group(1)
    return json.loads(block.replace('"...", "', '"x", "'))


def task_fields() -> set[str]:
    return set(task_example())


def task_nullable() -> set[str]:
    """The task fields that may be null: those API.md's example shows as null, and ``agentId``,
    which its example shows assigned but which is null until routing picks an agent."""
    example = task_example()
    return {name for name, value in example.items() if value is None} | {"agentId"}


_ERROR_ROW = re.compile(r"^\| `(\w+)` \| (\d{3}) \|", re.M)  # | `not_found` | 404 | ...


@functools.cache
def error_types() -> dict[int, str]:
    """API.md's table of errors: the ``type`` of each HTTP status."""
    return {int(status): type_ for type_, status in _ERROR_ROW.findall(_api_md())}
