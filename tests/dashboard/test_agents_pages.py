"""The "My agents" pages, for operators: registering an agent (its first key shown once), its page
with its record, earnings and recent tasks, editing its offers, its keys; and that what the pages
do is what the API then does. bob operates rex; charlie operates zed; alice hires."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from city.identity import services as identity
from city.identity.models import Agent, AgentOffer, ApiSecret
from credits import services as ledger
from credits.models import Account
from tests.actions import run_to_completion, submit, thumbs
from tests.browser import screenshot
from tests.dashboard.pages import logged_in
from tests.dashboard.test_dashboard_browser import log_in
from tests.factories import ApiClient, make_agent

QUEUE = "/api/v1/agent/tasks/submitted"  # an agent-only endpoint: a key that works gets 200


def shown_key(response) -> str:
    """The key in the page's read-only copy field."""
    match = re.search(r'id="new-secret" type="text" value="(agk_[^"]+)" readonly', response.text)
    assert match, response.text
    return match.group(1)


def offers_of(agent: Agent) -> dict[str, int]:
    return dict(AgentOffer.objects.filter(agent=agent).values_list("task_type", "price"))


def directory(person, task_type: str) -> dict[str, dict]:
    response = person.api.get("/api/v1/agents", {"taskType": task_type})
    assert response.status_code == 200, response.content
    return {agent["id"]: agent for agent in response.json()["data"]}


def register(client, **fields):
    body = {"name": "scribe", "offers": "translation 15\nsummary 8.50", "max_concurrent": "4"}
    return client.post("/agents/", {**body, **fields})


# The list and registering


def test_the_list_shows_my_agents_with_their_terms_record_and_earnings(alice, bob, completed, rex):
    thumbs(alice, completed["id"], "up")
    page = logged_in(bob).get("/agents/").text

    row = page.split(f'href="/agents/{rex.id}/"')[1].split("</tr>")[0]
    assert "Active" in row
    assert "<code>code_review</code> 25.00" in row and "<code>bug_fix</code> 40.00" in row
    assert 'data-label="Concurrency limit">10<' in row
    assert 'data-label="Rating">100% up<' in row
    assert 'data-label="Completed">1<' in row
    assert rex.balance().available == 2250  # 2500 less the 10% fee, in cents
    assert 'data-label="Earnings available">22.50<' in row


def test_the_list_shows_only_the_agents_i_operate(bob, rex, zed):
    page = logged_in(bob).get("/agents/").text

    assert rex.id in page and zed.id not in page


def test_a_suspended_agent_stays_listed_as_suspended(bob, rex):
    identity.agents_set_status(agents=Agent.objects.filter(pk=rex.id), status="suspended")

    page = logged_in(bob).get("/agents/").text

    assert rex.id in page and "status-suspended" in page and "Suspended" in page


def test_registering_an_agent_shows_its_first_key_once_and_the_key_works(bob):
    client = logged_in(bob)

    response = register(client)
    key = shown_key(response)
    later = client.get("/agents/")

    assert response.status_code == 201 and "no-store" in response["Cache-Control"]
    agent = Agent.objects.get(operator=bob.owner, name="scribe")
    assert offers_of(agent) == {"translation": 1500, "summary": 850}  # in cents
    assert agent.max_concurrent == 4 and agent.is_active
    assert response.text.count(key) == 1 and key not in later.text
    assert agent.pk in later.text
    assert ApiClient(key).get(QUEUE).status_code == 200
    assert ApiClient(key).get("/api/v1/credits").json() == {"available": 0, "held": 0, "total": 0}


def test_registering_opens_the_agents_accounts(bob):
    register(logged_in(bob))

    agent = Agent.objects.get(name="scribe")
    kinds = set(Account.objects.filter(agent=agent).values_list("kind", flat=True))
    assert kinds == {"earnings", "escrow"}


def test_a_registered_agent_is_hireable_at_its_prices(alice, bob):
    register(logged_in(bob))

    listed = directory(alice, "translation")

    (agent,) = listed.values()
    assert agent["name"] == "scribe"
    assert {"taskType": "translation", "price": 1500} in agent["taskTypes"]


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"name": "  "}, "name", "This field is required."),
        ({"offers": ""}, "offers", "List at least one task type with its price."),
        ({"offers": "translation 15\nCode_Review 1"}, "offers", "Line 2: “Code_Review” is not"),
        ({"offers": "code review 1"}, "offers", "Line 1: “code review 1” is not a task"),
        ({"offers": "translation\n"}, "offers", "Line 1: “translation” is not a task type and"),
        ({"offers": "translation 1,50"}, "offers", "must be a number of credits, e.g. 25"),
        ({"offers": "translation 1.505"}, "offers", "must be a number of credits"),
        ({"offers": "translation -1"}, "offers", "must be a number of credits"),
        ({"offers": "translation 0.00"}, "offers", "must be from 0.01 to 10,000,000,000.00"),
        ({"offers": "translation 99999999999999999999"}, "offers", "must be from 0.01 to"),
        ({"offers": "translation 1\n\ntranslation 2"}, "offers", "Line 3: translation is listed"),
        ({"max_concurrent": "0"}, "max_concurrent", "greater than or equal to 1"),
        ({"max_concurrent": "many"}, "max_concurrent", "Enter a whole number."),
    ],
)
def test_registering_shows_each_error_next_to_its_field(bob, fields, field, says):
    response = register(logged_in(bob), **fields)

    assert response.status_code == 400
    error = re.search(
        rf'<span class="error" id="id_{field}_error" role="alert">([^<]*)<', response.text
    )
    assert error and says in error.group(1).replace("&quot;", '"'), response.text
    assert not Agent.objects.filter(operator=bob.owner).exists()
    assert 'id="new-secret"' not in response.text


def test_every_bad_line_is_reported(bob):
    response = register(logged_in(bob), offers="a 1\nB 2\nc x")

    assert response.status_code == 400
    assert (
        "Line 2:" in response.text and "Line 3:" in response.text and "Line 1:" not in response.text
    )


# The agent's page


def test_the_agent_page_shows_its_record_earnings_and_keys(alice, bob, completed, rex):
    thumbs(alice, completed["id"], "up")

    page = logged_in(bob).get(f"/agents/{rex.id}/").text

    assert "100% thumbs up" in page and "<dt>Completed tasks</dt><dd>1</dd>" in page
    assert rex.balance().available == rex.balance().total == 2250  # cents
    assert "<dt>Available</dt><dd>22.50</dd>" in page and "<dt>Total</dt><dd>22.50</dd>" in page
    key = ApiSecret.objects.get(agent=rex.agent)
    assert key.hint in page and key.last_used_at is not None  # rex has called the API
    assert 'data-label="Last used">never<' not in page
    assert rex.key not in page


def test_the_rating_is_the_one_the_api_shows(alice, bob, rex):
    for feedback in ("up", "up", "down"):
        tid = submit(alice, agentId=rex.id)["id"]
        run_to_completion(rex, tid)
        assert thumbs(alice, tid, feedback).status_code == 200

    page = logged_in(bob).get(f"/agents/{rex.id}/").text
    listed = logged_in(bob).get("/agents/").text

    assert directory(alice, "code_review")[rex.id]["rating"] == 67
    assert "67% thumbs up" in page and 'data-label="Rating">67% up<' in listed


def test_the_recent_tasks_are_the_ten_newest_linked_only_where_i_am_the_caller(alice, bob, rex):
    ledger.grant_issue(owner=bob.owner, amount=10_000)
    hers = [submit(alice, agentId=rex.id, maxBudget=2500)["id"] for _ in range(10)]
    mine = submit(bob, agentId=rex.id, taskType="bug_fix")["id"]

    page = logged_in(bob).get(f"/agents/{rex.id}/").text
    recent = page.split("<h2>Recent tasks</h2>")[1]

    assert f'<a href="/tasks/{mine}/">' in recent
    assert recent.count('data-label="Task"') == 10
    assert hers[0] not in recent  # the eleventh newest
    for tid in hers[1:]:
        assert f"<code>{tid}</code>" in recent and f"/tasks/{tid}/" not in recent
    assert 'data-label="Price">40.00<' in recent and "bug_fix" in recent


def test_another_owners_agent_is_404(alice, bob, rex, zed):
    client = logged_in(bob)

    assert client.get(f"/agents/{zed.id}/").status_code == 404
    assert logged_in(alice).get(f"/agents/{rex.id}/").status_code == 404
    assert client.get("/agents/ag_nope/").status_code == 404


# Editing the terms


def test_editing_replaces_the_offers_and_the_api_directory_follows(alice, bob, rex):
    client = logged_in(bob)

    response = client.post(
        f"/agents/{rex.id}/",
        {"offers": "code_review 30\ntranslation 9.05", "max_concurrent": "3"},
    )
    page = client.get(response["Location"]).text

    assert (response.status_code, response["Location"]) == (302, f"/agents/{rex.id}/")
    assert "Saved rex&#x27;s task types and concurrency limit." in page
    rex.agent.refresh_from_db()
    assert offers_of(rex.agent) == {"code_review": 3000, "translation": 905}
    assert rex.agent.max_concurrent == 3
    assert directory(alice, "translation")[rex.id]["taskTypes"] == [
        {"taskType": "code_review", "price": 3000},
        {"taskType": "translation", "price": 905},
    ]
    assert rex.id not in directory(alice, "bug_fix")


def test_the_edit_form_starts_from_the_current_terms(bob, rex):
    page = logged_in(bob).get(f"/agents/{rex.id}/").text

    assert 'id="id_offers">\nbug_fix 40.00\ncode_review 25.00</textarea>' in page
    assert 'name="max_concurrent" value="10"' in page


def test_an_invalid_edit_is_refused_next_to_the_field_and_changes_nothing(bob, rex):
    response = logged_in(bob).post(
        f"/agents/{rex.id}/", {"offers": "code_review 30\nbug fix 10", "max_concurrent": "2"}
    )

    assert response.status_code == 400
    assert 'id="id_offers_error"' in response.text and "Line 2:" in response.text
    assert "code_review 30\nbug fix 10</textarea>" in response.text  # what was typed stays
    rex.agent.refresh_from_db()
    assert offers_of(rex.agent) == {"code_review": 2500, "bug_fix": 4000}
    assert rex.agent.max_concurrent == 10


def test_another_owners_agent_cannot_be_edited(alice, zed):
    response = logged_in(alice).post(
        f"/agents/{zed.id}/", {"offers": "code_review 1", "max_concurrent": "1"}
    )

    assert response.status_code == 404
    assert offers_of(zed.agent) == {"code_review": 3000}


# Keys


def test_a_new_key_is_shown_once_and_works_until_revoked(bob, rex):
    client = logged_in(bob)

    response = client.post(f"/agents/{rex.id}/keys/", {"key-name": "worker 2"})
    key = shown_key(response)
    record = ApiSecret.objects.get(agent=rex.agent, name="worker 2")
    later = client.get(f"/agents/{rex.id}/").text
    works = ApiClient(key).get(QUEUE)
    revoked = client.post(f"/agents/{rex.id}/keys/{record.pk}/revoke/", follow=True)

    assert response.status_code == 201 and response.text.count(key) == 1
    assert "no-store" in response["Cache-Control"]
    assert key not in later and record.hint in later and "worker 2" in later
    assert works.status_code == 200
    assert revoked.redirect_chain == [(f"/agents/{rex.id}/", 302)]
    assert f"Revoked the key worker 2 ({record.hint})" in revoked.text
    assert ApiClient(key).get(QUEUE).status_code == 401
    assert rex.api.get(QUEUE).status_code == 200  # the first key still works
    record.refresh_from_db()
    assert record.revoked_at is not None and "revoked</span>" in revoked.text


def test_revoking_the_last_key_warns_that_none_is_left(bob, rex):
    key = ApiSecret.objects.get(agent=rex.agent)

    page = logged_in(bob).post(f"/agents/{rex.id}/keys/{key.pk}/revoke/", follow=True).text

    assert "rex has no key left" in page
    assert rex.api.get(QUEUE).status_code == 401


def test_a_key_name_too_long_is_refused_next_to_the_field(bob, rex):
    response = logged_in(bob).post(f"/agents/{rex.id}/keys/", {"key-name": "k" * 101})

    assert response.status_code == 400
    assert 'id="id_key-name_error"' in response.text
    assert ApiSecret.objects.filter(agent=rex.agent).count() == 1


def test_another_owners_agent_keys_are_404(bob, charlie, rex, zed):
    theirs = ApiSecret.objects.get(agent=zed.agent)
    client = logged_in(bob)

    assert client.post(f"/agents/{zed.id}/keys/", {}).status_code == 404
    assert client.post(f"/agents/{zed.id}/keys/{theirs.pk}/revoke/").status_code == 404
    # bob's own agent in the path does not reach zed's key either
    assert client.post(f"/agents/{rex.id}/keys/{theirs.pk}/revoke/").status_code == 404
    assert ApiSecret.objects.filter(agent=zed.agent).count() == 1
    assert zed.api.get(QUEUE).status_code == 200


def test_an_owner_token_is_not_an_agent_key(bob, rex):
    token = bob.owner.tokens.get()

    response = logged_in(bob).post(f"/agents/{rex.id}/keys/{token.pk}/revoke/")

    assert response.status_code == 404
    assert bob.api.get("/api/v1/credits").status_code == 200


# CSRF


def test_every_form_needs_the_csrf_token(bob, rex):
    client = logged_in(bob, csrf=True)
    key = ApiSecret.objects.get(agent=rex.agent)

    responses = [
        register(client),
        client.post(f"/agents/{rex.id}/", {"offers": "code_review 1", "max_concurrent": "1"}),
        client.post(f"/agents/{rex.id}/keys/", {}),
        client.post(f"/agents/{rex.id}/keys/{key.pk}/revoke/"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert list(Agent.objects.filter(operator=bob.owner)) == [rex.agent]
    assert offers_of(rex.agent) == {"code_review": 2500, "bug_fix": 4000}
    assert ApiSecret.objects.filter(agent=rex.agent, revoked_at__isnull=True).count() == 1


def test_each_page_puts_the_csrf_token_in_its_forms(bob, rex):
    client = logged_in(bob, csrf=True)
    page = client.get(f"/agents/{rex.id}/").text
    forms = page.split("<form")[2:]  # after the nav's log-out form

    assert len(forms) == 3  # edit, create a key, revoke the one key
    assert all('name="csrfmiddlewaretoken"' in form for form in forms)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(f"/agents/{rex.id}/keys/", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 201


# In a real browser


def test_in_chromium_a_registered_agents_key_is_copied_and_the_pages_fit_a_phone(
    browser, live_city, bob, rex
):
    phone = browser.new_context(viewport={"width": 375, "height": 740}, has_touch=True)
    phone.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_city.url)
    phone.set_default_timeout(30_000)
    try:
        page = phone.new_page()
        log_in(page, live_city, "bob@example.com")
        page.goto(f"{live_city.url}/agents/")
        page.get_by_label("Name", exact=True).fill("scribe")
        page.get_by_label("Task types and prices (credits)").fill("translation 15\nsummary 8.5")
        page.get_by_role("button", name="Register agent").click()

        key = page.get_by_label("Agent key").input_value()
        page.get_by_role("button", name="Copy").click()
        expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == key
        screenshot(page, "phone-agents-registered")
        page.goto(f"{live_city.url}/agents/{rex.id}/")
        expect(page.get_by_role("button", name=re.compile("^Revoke the key"))).to_be_visible()
        assert (
            page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            <= 0
        )
        screenshot(page, "phone-agent")
    finally:
        phone.close()
    assert ApiClient(key).get(QUEUE).status_code == 200


def test_the_list_reads_every_agents_earnings_in_one_query(bob, rex, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run_to_completion(rex, submit(alice, agentId=rex.id)["id"])
    client = logged_in(bob)
    with CaptureQueriesContext(connection) as one:
        first = client.get("/agents/")
    for n in range(3):
        make_agent(bob, f"extra{n}", {"code_review": 1000})
    with CaptureQueriesContext(connection) as four:
        second = client.get("/agents/")

    assert len(four) == len(one)  # not a query per agent
    assert "22.50" in first.content.decode()  # rex's earnings: 2500 less the 10% fee
    assert second.content.decode().count('data-label="Earnings available"') == 4
