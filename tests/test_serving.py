"""How City is served: static files, the admin's pages, hosts, logs and deployment checks."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.utils.log import DEFAULT_LOGGING

from tests.asgi import asgi_request
from tests.factories import error_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def staff(reviewer) -> Client:
    client = Client()
    client.force_login(reviewer.owner.user)
    return client


def test_it_serves_the_admins_static_files_from_the_app():
    response = Client().get("/static/admin/css/base.css")

    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"/*")


def test_it_serves_static_files_under_the_asgi_server():
    status, headers, body = asgi_request("GET", "/static/admin/css/base.css")

    assert status == 200
    assert headers["content-type"].startswith("text/css")
    assert body.startswith(b"/*")


def test_the_asgi_application_runs_middleware_and_view_in_one_thread_hop(alice, submitted):
    from city.asgi import application
    from city.request_threads import RequestThreads

    status, _, body = asgi_request(
        "GET",
        f"/api/v1/tasks/{submitted['id']}",
        headers={"Authorization": f"Bearer {alice.token}"},
    )

    # A sync chain: Django's async chain hopped between the loop and the thread per middleware.
    assert isinstance(application, RequestThreads)
    assert not asyncio.iscoroutinefunction(application.app._middleware_chain)
    assert status == 200 and json.loads(body)["id"] == submitted["id"]


def test_it_names_sandboxes_in_the_plural(staff):
    page = staff.get("/admin/").content.decode()

    assert "Sandboxes" in page
    assert "Sandboxs" not in page


@pytest.mark.parametrize("model", ["tasks/task", "tasks/sandbox", "identity/apisecret"])
def test_it_shows_no_save_button_on_a_read_only_page(staff, completed, rex, model):
    from city.identity.models import ApiSecret
    from tasks.models import Sandbox

    pk = {
        "tasks/task": completed["id"],
        "tasks/sandbox": Sandbox.objects.values_list("pk", flat=True).first(),
        "identity/apisecret": ApiSecret.objects.values_list("pk", flat=True).first(),
    }[model]

    page = staff.get(f"/admin/{model}/{pk}/change/")

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b'name="_continue"' not in page.content


def test_it_links_to_no_missing_site_from_the_admin(staff):
    page = staff.get("/admin/").content.decode()

    assert "View site" not in page


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/nowhere"])
def test_it_answers_a_bad_host_under_the_api_in_the_error_body(alice, path):
    response = alice.api.get(path, headers={"Host": "evil.example"})

    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"]) == ("validation_error", "invalid_host")


def test_it_logs_a_4xx_once_with_debug_on(settings):
    stream = io.StringIO()
    try:
        # As Django configures logging at start-up: its defaults, then ours.
        logging.config.dictConfig(DEFAULT_LOGGING)
        logging.config.dictConfig(settings.LOGGING)
        logging.getLogger().handlers[0].setStream(stream)
        settings.DEBUG = True  # Django's own console handler prints only under DEBUG
        logging.getLogger("django.request").warning("Not Found: /api/v1/nowhere")
    finally:
        logging.config.dictConfig(settings.LOGGING)

    assert stream.getvalue().count("Not Found: /api/v1/nowhere") == 1
    assert all(
        not isinstance(h, logging.StreamHandler) or h.stream is not sys.stderr
        for h in logging.getLogger("django").handlers
    )


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "HTTPS")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "city.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_refuses_to_start_with_debug_off_and_no_secret_key():
    result = _manage("check")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_passes_the_deployment_checks_with_https_on():
    key = "k3y-" + "".join(chr(ord("a") + i % 26) + str(i % 10) for i in range(40))

    result = _manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=key, HTTPS="true")

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
