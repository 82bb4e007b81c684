"""The dashboard's credits page, through the test client: the balance, the ledger newest first
with links to its tasks, pages of 25, the chart of what was spent each day, and who may see it;
then the chart's selector and geometry on their own."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credits import charts
from credits import services as ledger
from credits.charts import bar_chart
from credits.selectors import DaySpend, spend_by_day
from tasks.models import Task
from tasks.services import task_refund
from tests.actions import run_to_completion, submit, thumbs
from tests.dashboard.pages import logged_in

PLOT_HEIGHT = charts.HEIGHT - charts.TOP - charts.BOTTOM


def cents(text: str) -> int:
    """An amount as the dashboard shows it, in credits ("-1,000.50"), back in cents."""
    return int(Decimal(text.replace(",", "")) * 100)


def entry_rows(page: str) -> list[tuple[str, str | None, int]]:
    """(kind, the task it links to or None, signed cents) of each ledger row, top to bottom."""
    rows = []
    for kind, row in re.findall(r'<tr class="entry entry-(\w+)">(.*?)</tr>', page, re.S):
        link = re.search(r'<a href="/tasks/([^/"]+)/">', row)
        amount = re.search(r'class="amount amount-(?:in|out)">([+-][\d,]+\.\d\d)</td>', row)
        rows.append((kind, link.group(1) if link else None, cents(amount.group(1))))
    return rows


def spend_table(page: str) -> dict[str, int]:
    """The chart's text equivalent: cents spent on each day, by ISO date, oldest first."""
    return {
        day: cents(amount)
        for day, amount in re.findall(
            r'<time datetime="(\d{4}-\d\d-\d\d)">[^<]*</time></th>'
            r'<td class="amount">(-?[\d,]+\.\d\d)</td>',
            page,
        )
    }


def at(*when: int):
    """The clock at a UTC time; ticking, as the server's would."""
    return time_machine.travel(datetime(*when, tzinfo=UTC))


# Who may see it


def test_a_visitor_is_asked_to_log_in(db):
    response = Client().get("/credits/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/credits/")


def test_a_login_without_an_owner_is_refused(db):
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)

    assert client.get("/credits/").status_code == 403


def test_another_owners_entries_never_appear(alice, charlie, rex):
    mine = submit(alice, agentId=rex.id)["id"]
    theirs = submit(charlie, agentId=rex.id)["id"]
    run_to_completion(rex, theirs)

    page = logged_in(alice).get("/credits/").content.decode()

    assert theirs not in page
    assert entry_rows(page) == [("hold", mine, -5_000), ("grant", None, 100_000)]
    assert spend_table(page)[timezone.localdate().isoformat()] == 0  # charlie's charge


# The balance and the ledger


def test_it_shows_the_balance_the_ledger_holds_after_a_task_is_charged(alice, rex):
    done = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, done)  # charged 2500 of its 5000 budget
    submit(alice, agentId=rex.id)  # 5000 held

    page = logged_in(alice).get("/credits/").content.decode()

    balance = alice.balance()
    assert (balance.available, balance.held, balance.total) == (92_500, 5_000, 97_500)
    assert "<dt>Available</dt><dd>925.00</dd>" in page
    assert "<dt>Held</dt><dd>50.00</dd>" in page
    assert "<dt>Total</dt><dd>975.00</dd>" in page


def test_it_lists_my_entries_newest_first_linked_to_their_tasks(alice, rex):
    first = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, first)
    assert thumbs(alice, first, "down").json() == {"refunded": True}
    second = submit(alice, agentId=rex.id)["id"]

    page = logged_in(alice).get("/credits/").content.decode()

    assert entry_rows(page) == [
        ("hold", second, -5_000),
        ("refund", first, 2_500),
        ("charge", first, -2_500),
        ("release", first, 5_000),
        ("hold", first, -5_000),
        ("grant", None, 100_000),
    ]
    assert "Refund of a charge" in page and "Charged for a task" in page
    assert 'amount-in">+1,000.00</td>' in page  # in credits, as every dashboard page shows


def test_the_ledger_pages_by_25(alice):
    for n in range(26):
        ledger.grant_issue(owner=alice.owner, amount=n + 1, memo=f"top-up {n}")
    client = logged_in(alice)  # 27 entries: the fixture's grant of 100000, then these 26

    first = client.get("/credits/").content.decode()
    second = client.get("/credits/?page=2").content.decode()
    beyond = client.get("/credits/?page=9").content.decode()

    assert len(entry_rows(first)) == 25 and "Page 1 of 2" in first
    assert 'href="?page=2">Older' in first and "top-up 25<" in first
    assert entry_rows(second) == [("grant", None, 1), ("grant", None, 100_000)]
    assert "Page 2 of 2" in second and "top-up 0<" in second and "top-up 0<" not in first
    assert entry_rows(beyond) == entry_rows(second)  # past the end: the last page


def test_the_page_reads_as_many_queries_for_many_entries_as_for_few(alice, rex):
    client = logged_in(alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as read:
            assert client.get("/credits/").status_code == 200
        return len(read)

    submit(alice, agentId=rex.id)
    few = queries()  # 2 entries, no charge
    for _ in range(4):
        run_to_completion(rex, submit(alice, agentId=rex.id)["id"])
    many = queries()  # 18 entries over 5 tasks, 4 charges

    assert few == many <= 8


# The chart


def test_the_chart_shows_what_was_spent_each_day_net_of_refunds(alice, rex, zed):
    with at(2025, 2, 10, 12):  # 30 days before the last day shown: out of the chart
        run_to_completion(rex, submit(alice, agentId=rex.id)["id"])
    with at(2025, 3, 9, 9):
        a = submit(alice, agentId=rex.id)["id"]
        run_to_completion(rex, a)  # 2500
        b = submit(alice, agentId=zed.id)["id"]
        run_to_completion(zed, b)  # 3000, then all of it back
        assert thumbs(alice, b, "down").json() == {"refunded": True}
    with at(2025, 3, 10, 15):
        c = submit(alice, agentId=rex.id)["id"]  # held: not spent
    with at(2025, 3, 11, 23, 30):  # a refund on a day with no charge
        task_refund(
            task=Task.objects.get(pk=a),
            amount=1000,
            via="test",
            actor="staff",
            reference=f"task:{a}:refund:test",
        )
    with at(2025, 3, 12, 8):
        run_to_completion(rex, c)  # 2500
        page = logged_in(alice).get("/credits/").content.decode()

    table = spend_table(page)
    assert len(table) == 30 and next(iter(table)) == "2025-02-11" and "2025-02-10" not in table
    assert [table[f"2025-03-{day:02}"] for day in (9, 10, 11, 12)] == [2500, 0, -1000, 2500]
    assert sum(table.values()) == 4000 and "<strong>40.00</strong> credits in 30 days" in page
    assert page.count('<rect class="bar') == 30 and page.count("bar-refund") == 1
    assert re.search(
        r'<svg role="img" aria-labelledby="spend-title spend-desc" viewBox="0 0 '
        r'\d+ \d+" width="100%"',
        page,
    )
    assert (
        '<title id="spend-title">' in page and '<desc id="spend-desc">40.00 credits spent' in page
    )


def test_spend_by_day_groups_by_the_local_day_and_includes_zero_days(alice, rex, zed):
    with at(2025, 3, 10, 3):  # still March 9 in New York (23:00, daylight time)
        run_to_completion(rex, submit(alice, agentId=rex.id)["id"])
    with at(2025, 3, 10, 14):
        run_to_completion(zed, submit(alice, agentId=zed.id)["id"])

    in_utc = spend_by_day(owner=alice.owner, days=3, today=date(2025, 3, 10))
    with timezone.override("America/New_York"):
        in_new_york = spend_by_day(owner=alice.owner, days=3, today=date(2025, 3, 10))
        with at(2025, 3, 12, 3):  # the 11th there: the window ends today, by default
            by_default = spend_by_day(owner=alice.owner, days=2)

    assert in_utc == [(date(2025, 3, 8), 0), (date(2025, 3, 9), 0), (date(2025, 3, 10), 5500)]
    assert in_new_york == [
        DaySpend(date(2025, 3, 8), 0),
        DaySpend(date(2025, 3, 9), 2500),
        DaySpend(date(2025, 3, 10), 3000),
    ]
    assert by_default == [(date(2025, 3, 10), 3000), (date(2025, 3, 11), 0)]


def test_spend_by_day_counts_only_the_owners_own_charges(alice, charlie, rex):
    with at(2025, 3, 10, 12):
        run_to_completion(rex, submit(charlie, agentId=rex.id)["id"])
        submit(alice, agentId=rex.id)  # a hold is not spending

    assert spend_by_day(owner=alice.owner, days=1, today=date(2025, 3, 10)) == [
        (date(2025, 3, 10), 0)
    ]
    assert spend_by_day(owner=charlie.owner, days=1, today=date(2025, 3, 10)) == [
        (date(2025, 3, 10), 2500)
    ]


# The chart's geometry


def days_of(*amounts: int) -> list[tuple[date, int]]:
    return [(date(2025, 3, 1) + timedelta(days=n), amount) for n, amount in enumerate(amounts)]


def test_the_largest_day_fills_the_plot_and_a_zero_day_keeps_its_place():
    chart = bar_chart(days_of(0, 1000, 4000, 0))

    assert [bar.height for bar in chart.bars] == [0, PLOT_HEIGHT / 4, PLOT_HEIGHT, 0]
    assert chart.baseline == charts.TOP + PLOT_HEIGHT
    assert all(bar.y + bar.height == chart.baseline for bar in chart.bars)
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs) and xs[0] >= charts.LEFT
    assert xs[-1] + chart.bars[-1].width <= charts.WIDTH - charts.RIGHT
    assert [label.text for label in chart.x_labels] == ["Mar 1", "Mar 3", "Mar 4"]
    assert [label.text for label in chart.y_labels] == ["40.00", "0.00"]


def test_a_day_that_got_more_back_than_it_was_charged_hangs_below_the_zero_line():
    chart = bar_chart(days_of(3000, -1000))
    up, down = chart.bars

    assert (up.refund, down.refund) == (False, True)
    assert chart.baseline == charts.TOP + PLOT_HEIGHT * 3 / 4
    assert up.y + up.height == chart.baseline == down.y
    assert (up.height, down.height) == (PLOT_HEIGHT * 3 / 4, PLOT_HEIGHT / 4)
    assert [label.text for label in chart.y_labels] == ["30.00", "0.00", "-10.00"]


def test_thirty_days_of_nothing_draw_thirty_flat_bars_on_the_bottom_line():
    chart = bar_chart(days_of(*[0] * 30))

    assert len(chart.bars) == 30 and {bar.height for bar in chart.bars} == {0}
    assert chart.baseline == charts.TOP + PLOT_HEIGHT and chart.total == 0
