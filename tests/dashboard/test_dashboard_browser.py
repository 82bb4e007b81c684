"""An owner in real Chromium against City served as production serves it (uvicorn, and with
Redis a Celery worker and the stream through Redis): submits a task through the form, watches
its page and the list follow the agent's work live, thumbs it down inside the refund window;
too little credit on the form; the pages at phone width.

The agent works over HTTP against the same server (``Remote``), so its transitions are published
from there, as a real agent's are. Waits are Playwright's (for what the page shows), never sleeps.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from city.identity.models import Owner
from credits import selectors
from disputes.models import Dispute
from tasks.models import Task
from tests.actions import hand_in, start
from tests.browser import screenshot
from tests.factories import make_owner
from tests.processes import HttpApi, Remote

LIVE = 30_000  # ms Playwright waits for what the stream brings


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(LIVE)
    yield context
    context.close()


def log_in(page, server, email: str) -> None:
    # The test settings hash with MD5 for speed; the server knows only production's hashers.
    user = get_user_model().objects.get(username=email)
    user.password = PBKDF2PasswordHasher().encode("pw", "browser-salt", iterations=1000)
    user.save(update_fields=["password"])
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login/?next=/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server.url}/tasks/")


def test_an_owner_submits_a_task_watches_it_live_and_thumbs_it_down(
    context, live_city, alice, rex, zed
):
    agent = Remote(rex, live_city)
    page = context.new_page()
    log_in(page, live_city, "alice@example.com")

    page.get_by_role("link", name="New task").click()
    page.get_by_label("Task type").select_option("code_review")
    # The directory for the type, reloaded by htmx: rex and zed with their prices.
    directory = page.locator("#agent-directory")
    expect(directory).to_contain_text("rex")
    expect(directory).to_contain_text("30.00")
    page.get_by_label("Description").fill("Review my parser")
    page.get_by_label("Code (optional)").fill("x = 1\n")
    page.get_by_label("Budget (credits)").fill("30")
    directory.get_by_label("rex").check()
    screenshot(page, "dashboard-submit")
    page.get_by_role("button", name="Submit task").click()

    expect(page.locator(".message")).to_contain_text("submitted")
    tid = page.url.rstrip("/").rsplit("/", 1)[-1]
    status = page.locator("#live [data-status]")
    expect(status).to_have_attribute("data-status", "submitted")
    # The list, in a second tab, follows the owner's stream.
    listing = context.new_page()
    listing.goto(f"{live_city.url}/tasks/")
    row = listing.locator(f"tr[data-task='{tid}'] .status")
    expect(row).to_have_text("Submitted")

    start(agent, tid)  # over HTTP: published by the server, as a real agent's start is
    expect(status).to_have_attribute("data-status", "executing")
    expect(row).to_have_text("Executing")
    expect(page.locator("#live")).to_contain_text("sbx_")  # the sandbox it started in

    assert hand_in(agent, tid).status_code == 200
    expect(status).to_have_attribute("data-status", "completed")
    expect(row).to_have_text("Completed")
    live = page.locator("#live")
    expect(live.locator(".findings")).to_contain_text("unused name x")
    expect(live).to_contain_text("Quality score")
    expect(live.locator("[data-countdown] .countdown")).to_have_text(
        re.compile(r"^(10:00|9:[0-5]\d)$")
    )
    screenshot(page, "dashboard-task-completed")

    page.get_by_role("button", name="Thumbs down").click()
    expect(page.locator(".message")).to_contain_text("Refunded 25.00 credits.")
    expect(status).to_have_attribute("data-status", "refunded")
    screenshot(page, "dashboard-task-refunded")
    task = Task.objects.get(pk=tid)
    assert (task.status, task.credits_refunded, task.feedback) == ("refunded", 2500, "down")
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)


def test_too_little_credit_is_said_next_to_the_budget(context, live_city, rex):
    make_owner("poor@example.com", credits=1000)
    page = context.new_page()
    log_in(page, live_city, "poor@example.com")
    page.goto(f"{live_city.url}/tasks/new/?task_type=code_review")
    page.get_by_label("Description").fill("Review my parser")
    page.get_by_label("Budget (credits)").fill("30")
    page.get_by_role("button", name="Submit task").click()

    error = page.locator("#id_max_budget_error")
    expect(error).to_have_text(
        "You have 10.00 credits available: 20.00 more are needed for this budget."
    )
    expect(page.get_by_label("Budget (credits)")).to_have_value("30")
    screenshot(page, "dashboard-submit-short-of-credit")
    assert not Task.objects.exists()


def test_the_pages_fit_a_phone_and_start_with_a_skip_link(browser, live_city, alice, rex):
    # Not is_mobile: a mobile viewport widens itself to fit what overflows, hiding the overflow.
    phone = browser.new_context(viewport={"width": 375, "height": 740}, has_touch=True)
    phone.set_default_timeout(LIVE)
    try:
        page = phone.new_page()
        log_in(page, live_city, "alice@example.com")
        for path in ("/tasks/", "/tasks/new/", "/credits/", "/agents/", "/tokens/"):
            page.goto(f"{live_city.url}{path}")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
            screenshot(page, "phone" + path.rstrip("/").replace("/", "-"))
        page.keyboard.press("Tab")
        expect(page.locator(":focus")).to_have_text("Skip to content")
    finally:
        phone.close()


def test_a_newcomer_signs_up_hires_watches_is_refunded_disputes_and_makes_a_token(
    context, live_city, rex
):
    agent = Remote(rex, live_city)
    page = context.new_page()

    # Sign up through the form; the platform grants credits (manage.py grant_credits).
    page.goto(f"{live_city.url}/signup/")
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Password").fill("a long passphrase 42")
    page.get_by_role("button", name="Create my account").click()
    expect(page).to_have_url(f"{live_city.url}/tasks/")
    call_command(
        "grant_credits",
        "--email",
        "newcomer@example.com",
        "--amount",
        "100000",
        stdout=io.StringIO(),
    )
    newcomer = Owner.objects.get(user__username="newcomer@example.com")
    page.get_by_role("link", name="Credits").click()
    expect(page.locator("main")).to_contain_text("1,000.00")
    screenshot(page, "journey-credits-granted")

    def hire(description: str) -> str:
        page.get_by_role("link", name="New task").click()
        page.get_by_label("Task type").select_option("code_review")
        expect(page.locator("#agent-directory")).to_contain_text("Agent for code_review")
        page.get_by_label("Description").fill(description)
        page.get_by_label("Code (optional)").fill("x = 1\n")
        page.get_by_label("Budget (credits)").fill("30")
        page.locator("#agent-directory").get_by_label("rex").check()
        page.get_by_role("button", name="Submit task").click()
        expect(page.locator(".message")).to_contain_text("submitted")
        return page.url.rstrip("/").rsplit("/", 1)[-1]

    def work(tid: str) -> None:
        status = page.locator("#live [data-status]")
        expect(status).to_have_attribute("data-status", "submitted")
        start(agent, tid)
        expect(status).to_have_attribute("data-status", "executing")
        assert hand_in(agent, tid).status_code == 200
        expect(status).to_have_attribute("data-status", "completed")  # live, no reload

    # A task hired directly, watched to completed, thumbed down: the charge comes back.
    first = hire("Review my parser")
    work(first)
    screenshot(page, "journey-completed")
    page.get_by_role("button", name="Thumbs down").click()
    expect(page.locator(".message")).to_contain_text("Refunded 25.00 credits.")
    page.get_by_role("link", name="Credits").click()
    expect(page.locator("main")).to_contain_text("1,000.00")
    screenshot(page, "journey-refunded-balance")

    # Another task, past its thumbs-down window: a dispute through the page's form.
    second = hire("Review my lexer")
    work(second)
    Task.objects.filter(pk=second).update(completed_at=timezone.now() - timedelta(minutes=11))
    page.reload()
    page.get_by_label("Reason").select_option(index=1)
    page.get_by_label("What went wrong").fill("The review missed the lexer's state machine.")
    page.get_by_role("button", name="File a dispute").click()
    expect(page.locator(".message")).to_contain_text("ispute")
    expect(page.locator(".disputes")).to_contain_text(
        "The review missed the lexer's state machine."
    )
    screenshot(page, "journey-dispute-filed")
    assert Dispute.objects.get(task_id=second).status == "filed"

    # An API token, created (shown once) and revoked.
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name (optional)").fill("ci")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert HttpApi(live_city.url, secret).get("/api/v1/credits").status_code == 200
    screenshot(page, "journey-token")
    page.get_by_role("button", name="Revoke the token ci").click()
    expect(page.locator(".message")).to_contain_text("Revoked the token ci")
    assert HttpApi(live_city.url, secret).get("/api/v1/credits").status_code == 401

    balance = selectors.balance_get(owner=newcomer)
    assert (balance.available, balance.held) == (100_000 - 2500, 0)  # the disputed charge
