"""A reviewer works a dispute in real Chromium against a live server: logs in, opens the queue,
opens the dispute, refunds part of it through the form, and sees the result.

Chromium comes from ``tests.browser``; the screenshots of the queue and the change page are kept
in ``var/test-artifacts/``.
"""

from __future__ import annotations

from disputes.models import Dispute
from tests.actions import platform_fees, run_to_completion, submit
from tests.browser import ARTIFACTS


def test_a_reviewer_refunds_part_of_a_dispute_in_the_browser(
    page, live_server, reviewer, alice, rex
):
    tid = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, tid)
    did = alice.api.post(
        f"/api/v1/tasks/{tid}/disputes",
        {"reason": "incomplete_delivery", "description": "Half the files were skipped."},
    ).json()["id"]

    page.goto(f"{live_server.url}/admin/login/?next=/admin/disputes/dispute/")
    page.fill("#id_username", "reviewer@example.com")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list").inner_text().count(did) == 1
    page.screenshot(path=str(ARTIFACTS / "dispute-queue.png"), full_page=True)

    page.click(f"#result_list a:text('{did}')")
    page.wait_for_selector("text=The task")
    body = page.inner_text("body")
    assert "Half the files were skipped." in body
    assert "unused name x" in body  # the output the caller disputes
    page.screenshot(path=str(ARTIFACTS / "dispute-change.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/disputes/dispute/")
    page.check(f"input[name=_selected_action][value='{did}']")
    page.select_option("select[name=action]", "refund_in_part")
    page.click("button[name=index]")
    page.wait_for_selector("#id_amount")
    assert "Still refundable: 2500 cents." in page.inner_text("body")
    page.fill("#id_amount", "1000")
    page.fill("#id_note", "Half the files: half the charge.")
    page.click("input[type=submit][value=Refund]")
    page.wait_for_selector(".messagelist")

    assert "Refunded 1000 of 1 dispute(s)." in page.inner_text(".messagelist")
    page.screenshot(path=str(ARTIFACTS / "dispute-refunded.png"), full_page=True)
    dispute = Dispute.objects.get(pk=did)
    assert (dispute.status, dispute.refunded_amount) == ("partially_refunded", 1000)
    assert alice.balance().available == 100_000 - 2500 + 1000
    assert platform_fees() == 250 - 100
