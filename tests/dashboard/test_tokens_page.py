"""The API tokens page: creating an owner token (its secret shown once), listing and revoking, and
that what the page does is what the API then accepts or refuses."""

from __future__ import annotations

import re

from django.test import Client
from playwright.sync_api import expect

from city.identity.models import ApiSecret
from tests.browser import screenshot
from tests.dashboard.pages import logged_in
from tests.dashboard.test_dashboard_browser import log_in
from tests.factories import ApiClient


def created_secret(response) -> str:
    """The secret in the page's read-only copy field."""
    match = re.search(r'id="new-secret" type="text" value="(own_[^"]+)" readonly', response.text)
    assert match, response.text
    return match.group(1)


def test_it_creates_a_named_token_and_shows_its_secret_once(alice):
    client = logged_in(alice)

    response = client.post("/tokens/", {"name": "CI"})
    secret = created_secret(response)
    later = client.get("/tokens/")

    assert response.status_code == 201
    assert response.text.count(secret) == 1
    assert "no-store" in response["Cache-Control"]
    token = alice.owner.tokens.get(name="CI")
    assert token.hint in later.text and "CI" in later.text
    assert secret not in later.text and 'id="new-secret"' not in later.text


def test_the_secret_comes_with_a_copy_button_and_its_script(alice):
    page = logged_in(alice).post("/tokens/", {"name": ""}).text

    assert '<button type="button" data-copy="new-secret"' in page
    assert '<label for="new-secret">' in page
    assert '<script src="/static/city/copy.js" defer></script>' in page


def test_the_copy_script_is_served_by_the_app(db):
    response = Client().get("/static/city/copy.js")

    assert response.status_code == 200
    assert "navigator.clipboard" in b"".join(response.streaming_content).decode()


def test_a_token_made_here_works_on_the_api_until_it_is_revoked(alice):
    client = logged_in(alice)
    secret = created_secret(client.post("/tokens/", {"name": "script"}))
    token = alice.owner.tokens.get(name="script")

    before = ApiClient(secret).get("/api/v1/credits")
    revoked = client.post(f"/tokens/{token.pk}/revoke/")
    after = ApiClient(secret).get("/api/v1/credits")

    assert before.status_code == 200 and before.json()["available"] == 100_000
    assert (revoked.status_code, revoked["Location"]) == (302, "/tokens/")
    assert after.status_code == 401
    assert alice.api.get("/api/v1/credits").status_code == 200  # her other token still works


def test_a_revoked_token_stays_listed_as_revoked_with_a_message(alice):
    client = logged_in(alice)
    token = alice.owner.tokens.get()

    page = client.post(f"/tokens/{token.pk}/revoke/", follow=True).text

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert f"Revoked the token {token.hint}" in page
    assert token.hint in page and "revoked</span>" in page
    assert f'action="/tokens/{token.pk}/revoke/"' not in page  # no Revoke button left


def test_the_list_shows_when_each_token_was_last_used(alice):
    ApiClient(alice.token).get("/api/v1/credits")
    logged_in(alice).post("/tokens/", {"name": "unused"})

    rows = logged_in(alice).get("/tokens/").text.split("<tr>")[2:]  # after the header row

    unused, used = rows  # newest first
    assert "unused" in unused and ">never<" in unused
    assert ">never<" not in used and "<time" in used.split('data-label="Last used"')[1]


def test_a_name_too_long_is_refused_next_to_the_field(alice):
    response = logged_in(alice).post("/tokens/", {"name": "x" * 101})

    assert response.status_code == 400
    assert 'id="id_name_error"' in response.text and "at most 100 characters" in response.text
    assert alice.owner.tokens.count() == 1


def test_another_owners_token_is_404_and_stays_valid(alice, charlie):
    theirs = charlie.owner.tokens.get()

    response = logged_in(alice).post(f"/tokens/{theirs.pk}/revoke/")

    assert response.status_code == 404
    assert charlie.api.get("/api/v1/credits").status_code == 200


def test_another_owners_tokens_are_not_listed(alice, charlie):
    page = logged_in(alice).get("/tokens/").text

    assert charlie.owner.tokens.get().hint not in page
    assert alice.owner.tokens.get().hint in page


def test_revoking_takes_a_post(alice):
    token = alice.owner.tokens.get()

    response = logged_in(alice).get(f"/tokens/{token.pk}/revoke/")

    assert response.status_code == 405
    assert ApiSecret.objects.get(pk=token.pk).revoked_at is None


def test_creating_and_revoking_need_the_csrf_token(alice):
    client = logged_in(alice, csrf=True)
    token = alice.owner.tokens.get()

    created = client.post("/tokens/", {"name": "forged"})
    revoked = client.post(f"/tokens/{token.pk}/revoke/")

    assert (created.status_code, revoked.status_code) == (403, 403)
    assert alice.owner.tokens.count() == 1
    assert alice.api.get("/api/v1/credits").status_code == 200


def test_the_forms_carry_the_csrf_token(alice):
    client = logged_in(alice, csrf=True)
    page = client.get("/tokens/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    response = client.post("/tokens/", {"name": "real", "csrfmiddlewaretoken": csrf})

    assert response.status_code == 201
    assert alice.owner.tokens.filter(name="real").exists()


def test_a_visitor_is_sent_to_log_in(db):
    response = Client().get("/tokens/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/tokens/")


# In a real browser: the Copy button, and the page at phone width


def test_in_chromium_copy_puts_the_secret_on_the_clipboard_and_revoke_stays_at_phone_width(
    browser, live_city, alice
):
    phone = browser.new_context(viewport={"width": 375, "height": 740}, has_touch=True)
    phone.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_city.url)
    phone.set_default_timeout(30_000)
    try:
        page = phone.new_page()
        log_in(page, live_city, "alice@example.com")
        page.goto(f"{live_city.url}/tokens/")
        page.get_by_label("Name (optional)").fill("laptop")
        page.get_by_role("button", name="Create token").click()

        secret = page.get_by_label("Token", exact=True).input_value()
        page.get_by_role("button", name="Copy").click()
        expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        assert (
            page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            <= 0
        )
        screenshot(page, "phone-tokens-created")

        page.get_by_role("button", name="Revoke the token laptop").click()
        expect(page.locator(".message")).to_contain_text("Revoked the token laptop")
        expect(page.get_by_role("button", name="Revoke the token laptop")).to_have_count(0)
    finally:
        phone.close()
    assert ApiClient(secret).get("/api/v1/credits").status_code == 401
