"""The operators' management commands: their --json output, their refusals, and check_ledger."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command, get_commands, load_command_class

from city.identity.models import Agent, AgentOffer, ApiSecret, Owner
from credits.models import Account, Entry
from tests.factories import ApiClient, error_of


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_json(name: str, *args: str) -> dict:
    out, _ = run(name, *args, "--json")
    # Exactly one JSON object on stdout, and nothing else there.
    assert out.count("\n") == 1 and out.endswith("\n"), out
    payload = json.loads(out)
    assert isinstance(payload, dict)
    return payload


def refused(name: str, *args: str) -> str:
    with pytest.raises(CommandError) as info:
        run(name, *args)
    assert info.value.returncode != 0
    return str(info.value)


def from_command_line(capsys, *argv: str) -> tuple[int, str, str]:
    """Run as ``manage.py <argv>`` does: (exit status, stdout, stderr)."""
    command = load_command_class(get_commands()[argv[0]], argv[0])
    try:
        command.run_from_argv(["manage.py", *argv])
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# create_owner


def test_it_creates_an_owner_whose_token_works(db):
    payload = run_json("create_owner", "--email", "Dana@Example.com", "--credits", "1500")

    assert set(payload) == {"id", "email", "token"}
    assert payload["email"] == "dana@example.com"
    assert payload["token"].startswith("own_")
    owner = Owner.objects.get(pk=payload["id"])
    assert owner.user.email == "dana@example.com"
    balance = ApiClient(payload["token"]).get("/api/v1/credits")
    assert balance.json() == {"available": 1500, "held": 0, "total": 1500}


def test_it_creates_an_owner_with_no_credits(db):
    payload = run_json("create_owner", "--email", "dana@example.com", "--credits", "0")

    balance = ApiClient(payload["token"]).get("/api/v1/credits")
    assert balance.json() == {"available": 0, "held": 0, "total": 0}
    assert not Entry.objects.filter(account__owner_id=payload["id"]).exists()


def test_it_gives_the_owner_a_login_and_staff_rights_on_request(db):
    run_json("create_owner", "--email", "staff@example.com", "--password", "s3cret", "--staff")
    run_json("create_owner", "--email", "plain@example.com")

    staff = get_user_model().objects.get(username="staff@example.com")
    plain = get_user_model().objects.get(username="plain@example.com")
    assert staff.check_password("s3cret")
    assert staff.is_staff
    assert not plain.is_staff
    assert not plain.has_usable_password()


def test_it_prints_the_token_for_humans_without_json(db):
    out, _ = run("create_owner", "--email", "dana@example.com")

    token = out.split("token: ")[1].split()[0]
    assert ApiClient(token).get("/api/v1/credits").status_code == 200


def test_it_refuses_a_duplicate_email(alice):
    message = refused("create_owner", "--email", "ALICE@example.com")

    assert "already exists" in message
    assert Owner.objects.filter(user__email="alice@example.com").count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "dana@example.com", "--credits", "-1"], "must not be negative"),
        (["--email", "not-an-email"], "not an email address"),
    ],
)
def test_it_refuses_a_bad_owner(args, message, db):
    assert message in refused("create_owner", *args)
    assert not Owner.objects.exists()


def test_it_exits_non_zero_with_the_reason_on_stderr(capsys, alice):
    status, out, err = from_command_line(
        capsys, "create_owner", "--email", "alice@example.com", "--json"
    )

    assert status == 1
    assert out == ""
    assert "already exists" in err


# create_agent


def test_it_creates_an_agent_whose_key_works(alice, bob):
    payload = run_json(
        "create_agent",
        "--operator",
        "bob@example.com",
        "--name",
        "Tess",
        "--task-type",
        "test_writing=2000",
        "--task-type",
        "code_review=3500",
        "--max-concurrent",
        "2",
    )

    assert set(payload) == {"id", "apiKey"}
    assert payload["id"].startswith("ag_")
    assert payload["apiKey"].startswith("agk_")
    agent = Agent.objects.get(pk=payload["id"])
    assert (agent.operator, agent.name, agent.max_concurrent) == (bob.owner, "Tess", 2)
    assert agent.is_active
    offers = dict(AgentOffer.objects.filter(agent=agent).values_list("task_type", "price"))
    assert offers == {"test_writing": 2000, "code_review": 3500}
    assert ApiClient(payload["apiKey"]).get("/api/v1/agent/tasks/submitted").json() == []
    hireable = alice.api.get("/api/v1/agents", {"taskType": "test_writing"}).json()["data"]
    assert [a["id"] for a in hireable] == [payload["id"]]


def test_it_refuses_an_unknown_operator(db):
    message = refused(
        "create_agent", "--operator", "nobody@example.com", "--name", "X", "--task-type", "a=1"
    )

    assert "nobody@example.com" in message
    assert not Agent.objects.exists()


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        ("code_review", "TYPE=PRICE"),
        ("code_review=", "integer"),
        ("code_review=abc", "integer"),
        ("code_review=12.5", "integer"),
        ("=5", "TYPE=PRICE"),
        ("Code-Review=5", "task type must match"),
        ("code_review=0", "at least 1 cent"),
        ("code_review=-5", "at least 1 cent"),
    ],
)
def test_it_refuses_a_malformed_task_type(offer, message, bob):
    error = refused(
        "create_agent", "--operator", "bob@example.com", "--name", "X", "--task-type", offer
    )

    assert message in error
    assert not Agent.objects.exists()


def test_it_refuses_an_agent_that_could_never_execute(bob):
    message = refused(
        "create_agent",
        "--operator",
        "bob@example.com",
        "--name",
        "X",
        "--task-type",
        "code_review=5",
        "--max-concurrent",
        "0",
    )

    assert "max concurrent" in message
    assert not Agent.objects.exists()


# grant_credits


def test_it_grants_credits_to_the_available_balance(alice, submitted):
    payload = run_json("grant_credits", "--email", "alice@example.com", "--amount", "2500")

    assert payload == {"email": "alice@example.com", "amount": 2500, "available": 97_500}
    assert alice.api.get("/api/v1/credits").json() == {
        "available": 97_500,
        "held": 5000,
        "total": 102_500,
    }
    grants = alice.api.get("/api/v1/credits/entries").json()["data"]
    assert (grants[0]["kind"], grants[0]["amount"]) == ("grant", 2500)


@pytest.mark.parametrize("amount", ["0", "-5"])
def test_it_refuses_a_grant_below_one_cent(amount, alice):
    before = Entry.objects.count()

    message = refused("grant_credits", "--email", "alice@example.com", "--amount", amount)

    assert "at least 1 cent" in message
    assert Entry.objects.count() == before
    assert alice.balance().available == 100_000


def test_it_refuses_a_grant_to_an_unknown_owner(db):
    message = refused("grant_credits", "--email", "nobody@example.com", "--amount", "5")

    assert "nobody@example.com" in message
    assert not Entry.objects.exists()


# check_ledger


def test_it_passes_a_clean_ledger_with_a_one_line_summary(capsys, completed):
    status, out, err = from_command_line(capsys, "check_ledger")

    assert status == 0
    assert out.startswith("ledger ok")
    assert out.count("\n") == 1
    assert err == ""


@pytest.mark.ledger_unchecked
def test_it_fails_listing_an_account_whose_cached_balance_was_tampered_with(capsys, alice):
    pool = Account.objects.get(owner=alice.owner, kind=Account.Kind.POOL)
    Account.objects.filter(pk=pool.pk).update(balance=99_000)

    status, out, err = from_command_line(capsys, "check_ledger")

    assert status == 1
    assert "ledger ok" not in out
    assert f"account {pool.pk} (pool) caches 99000 but its entries sum to 100000" in err
    assert "1 discrepancies" in err


# seed_demo


def read_env(path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


def test_it_seeds_a_demo_whose_secrets_work(tmp_path):
    env_file = tmp_path / ".demo.env"

    out, _ = run("seed_demo", "--env-file", str(env_file))

    env = read_env(env_file)
    assert set(env) == {
        "OWNER_TOKEN",
        "AGENT_KEY",
        "AGENT_ID",
        "TASK_TYPE",
        "PRICE",
        "DEMO_AGENT_KEY",
        "DEMO_AGENT_ID",
    }
    assert env["DEMO_AGENT_ID"] != env["AGENT_ID"]  # the demo agent never races the walkthrough
    assert ApiClient(env["DEMO_AGENT_KEY"]).get("/api/v1/agent/tasks/submitted").status_code == 200
    assert env["OWNER_TOKEN"] in out and env["AGENT_KEY"] in out
    owner = ApiClient(env["OWNER_TOKEN"])
    assert owner.get("/api/v1/credits").json()["available"] == 100_000
    assert ApiClient(env["AGENT_KEY"]).get("/api/v1/agent/tasks/submitted").status_code == 200
    hired = owner.post(
        "/api/v1/tasks",
        {
            "taskType": env["TASK_TYPE"],
            "maxBudget": int(env["PRICE"]),
            "agentId": env["AGENT_ID"],
            "input": {"description": "demo"},
        },
    )
    assert hired.status_code == 201, hired.content
    assert get_user_model().objects.get(username="reviewer@city.local").is_staff


def test_it_seeds_again_with_fresh_secrets_and_revokes_the_old(tmp_path):
    env_file = tmp_path / ".demo.env"
    run("seed_demo", "--env-file", str(env_file))
    first = read_env(env_file)
    counts = (Owner.objects.count(), Agent.objects.count(), AgentOffer.objects.count())

    run("seed_demo", "--env-file", str(env_file))
    second = read_env(env_file)

    assert (Owner.objects.count(), Agent.objects.count(), AgentOffer.objects.count()) == counts
    assert second["AGENT_ID"] == first["AGENT_ID"]
    assert second["OWNER_TOKEN"] != first["OWNER_TOKEN"]
    assert second["AGENT_KEY"] != first["AGENT_KEY"]
    for old in (first["OWNER_TOKEN"], first["AGENT_KEY"]):
        response = ApiClient(old).get("/api/v1/credits")
        assert (response.status_code, error_of(response)["code"]) == (401, "invalid_secret")
    owner = ApiClient(second["OWNER_TOKEN"])
    assert owner.get("/api/v1/credits").json() == {
        "available": 100_000,
        "held": 0,
        "total": 100_000,
    }
    assert ApiClient(second["AGENT_KEY"]).get("/api/v1/credits").status_code == 200
    demo = Owner.objects.get(user__email="demo@city.local")
    live = ApiSecret.objects.filter(owner=demo, revoked_at__isnull=True)
    assert live.count() == 1


def test_it_refuses_the_same_task_type_twice(bob):
    with pytest.raises(CommandError, match="once"):
        call_command(
            "create_agent",
            "--operator",
            "bob@example.com",
            "--name",
            "twice",
            "--task-type",
            "code_review=1",
            "--task-type",
            "code_review=2",
        )
    assert not Agent.objects.filter(name="twice").exists()
