"""manage.py issue_secret: rotation of owner tokens and agent keys."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import ApiClient


def issue(*args) -> dict:
    out = StringIO()
    call_command("issue_secret", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_issues_a_second_owner_token_and_both_work(alice):
    issued = issue("--owner", "alice@example.com")
    assert issued["secret"].startswith("own_") and issued["revoked"] == 0
    assert ApiClient(issued["secret"]).get("/api/v1/credits").status_code == 200
    assert alice.api.get("/api/v1/credits").status_code == 200


def test_it_rotates_an_agent_key_revoking_the_old_one(rex):
    issued = issue("--agent", rex.id, "--revoke-others")
    assert issued["secret"].startswith("agk_") and issued["revoked"] == 1
    assert ApiClient(issued["secret"]).get("/api/v1/credits").status_code == 200
    assert rex.api.get("/api/v1/credits").status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--owner", "nobody@example.com"], "no owner"), (["--agent", "ag_missing"], "no agent")],
)
def test_it_refuses_an_unknown_holder(args, message, db):
    with pytest.raises(CommandError, match=message):
        call_command("issue_secret", *args)
