"""Real Chromium for the browser tests (a pytest plugin, loaded by tests/conftest.py).

Playwright drives the system's ``chromium`` (Debian's package; ``.ci/run`` installs it); the
test fails, rather than skips, without it when ``CI=true``. Screenshots go to
``var/test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ARTIFACTS = Path(__file__).resolve().parents[1] / "var" / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if chromium is None or sync_playwright is None:
        missing = "the chromium package" if chromium is None else "playwright"
        if IN_CI:
            pytest.fail(f"CI must run the browser tests: {missing} is missing")
        pytest.skip(f"needs {missing}")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    """A desktop-sized page in a fresh context (no cookies)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
