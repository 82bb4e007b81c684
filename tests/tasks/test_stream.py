"""The live stream against a real ASGI server process (uvicorn, as the Procfile runs it): tasks
driven over HTTP, by a real Celery worker on Redis too; resume with Last-Event-ID; outsiders
refused with the contract's errors; keep-alives; a server that stops with streams open."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from city.identity.models import ApiSecret
from tasks import services
from tests.actions import hand_in, provision_sandbox, run_to_completion, start, submit, thumbs
from tests.factories import GOOD_OUTPUT, error_of
from tests.processes import Remote, wait_for
from tests.sse import open_stream, refused


def task_url(server, tid: str) -> str:
    return f"{server.url}/api/v1/tasks/{tid}/stream"


def statuses(events) -> list[tuple[str, str]]:
    """(recorded type, status) of each ``status`` event."""
    return [(e.data["type"], e.data["status"]) for e in events if e.event == "status"]


def test_an_owner_sees_every_transition_of_a_task_driven_over_http(start_server, alice, rex):
    server = start_server()
    owner, bot = Remote(alice, server), Remote(rex, server)
    tid = submit(owner, agentId=rex.id)["id"]
    stream = open_stream(task_url(server, tid), alice.token)

    run_to_completion(bot, tid)
    events = stream.until(lambda e: e.event == "complete")

    assert [e.event for e in events] == ["status", "status", "status", "complete"]
    assert statuses(events) == [
        ("start", "executing"),
        ("complete", "quality_check"),
        ("pass", "completed"),
    ]
    task = owner.api.get(f"/api/v1/tasks/{tid}").json()
    assert events[-1].data == {
        "taskId": tid,
        "output": GOOD_OUTPUT,
        "qualityScore": task["qualityScore"],
        "creditsCharged": 2500,
    }
    # The stream's ids are the recorded events' ids; a group's id rides on its last record.
    recorded = {e["type"]: e["id"] for e in owner.api.get(f"/api/v1/tasks/{tid}/events").json()}
    assert [e.data["id"] for e in events[:3]] == [
        recorded["start"],
        recorded["complete"],
        recorded["pass"],
    ]
    assert [e.id for e in events] == [
        str(recorded["start"]),
        str(recorded["complete"]),
        None,
        str(recorded["pass"]),
    ]


def test_a_workers_transitions_reach_the_owner_wide_stream_through_redis(
    start_worker, start_server, alice, rex
):
    start_worker()
    server = start_server(redis=True)
    owner, bot = Remote(alice, server), Remote(rex, server)
    stream = open_stream(f"{server.url}/api/v1/stream", alice.token)

    tid = submit(owner)["id"]  # smart routing: the worker routes it, and checks its output
    routed = stream.until(lambda e: e.event == "status" and e.data["type"] == "assign")
    start(bot, tid)
    assert hand_in(bot, tid).status_code == 200
    settled = stream.until(lambda e: e.event == "complete")

    events = routed + settled
    assert statuses(events) == [
        ("submit", "submitted"),
        ("route", "routing"),
        ("assign", "submitted"),
        ("start", "executing"),
        ("complete", "quality_check"),
        ("pass", "completed"),
    ]
    assert {e.data["taskId"] for e in events} == {tid}
    by_worker = [e.data["actor"] for e in events if e.data.get("type") in ("route", "pass")]
    assert by_worker == ["system", "system"]
    assert events[-1].data["creditsCharged"] == 2500


def test_a_stream_survives_its_servers_redis_connection_dropping(start_server, alice, rex):
    server = start_server(redis=True)
    owner, bot = Remote(alice, server), Remote(rex, server)
    tid = submit(owner, agentId=rex.id)["id"]
    stream = open_stream(task_url(server, tid), alice.token)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    name = f"city-stream:{settings.STREAM_REDIS_CHANNEL}"

    def subscribers() -> set[int]:
        return {c["id"] for c in broker.client_list(_type="pubsub") if c["name"] == name}

    dropped = wait_for(subscribers, "the server's subscriber")
    for client_id in dropped:
        broker.client_kill_filter(_id=client_id)
    start(bot, tid)  # sent while the server may still be reconnecting: read back after
    wait_for(lambda: subscribers() - dropped, "the server to subscribe again")
    assert hand_in(bot, tid).status_code == 200  # sent over the new subscription

    assert statuses(stream.take(2)) == [("start", "executing"), ("complete", "quality_check")]


def test_a_reconnect_with_last_event_id_gets_what_it_missed_once_and_in_order(
    start_server, alice, rex
):
    server = start_server()
    owner, bot = Remote(alice, server), Remote(rex, server)
    tid = submit(owner, agentId=rex.id)["id"]
    first = open_stream(task_url(server, tid), alice.token)
    start(bot, tid)
    assert first.next().data["type"] == "start"
    last_id = first.last_id
    first.close()

    assert hand_in(bot, tid).status_code == 200  # checked and passed while nobody listens
    second = open_stream(task_url(server, tid), alice.token, last_event_id=last_id)
    missed = second.until(lambda e: e.event == "complete")
    assert thumbs(owner, tid, "up").status_code == 200
    after = second.next()

    assert [(e.event, e.data.get("type")) for e in missed] == [
        ("status", "complete"),
        ("status", "pass"),
        ("complete", None),
    ]
    # The next event is the new one: nothing missed came twice.
    assert (after.event, after.data) == ("feedback", {"taskId": tid, "feedback": "up"})


def test_the_query_parameter_resumes_the_owner_wide_stream(start_server, alice, rex):
    server = start_server()
    owner, bot = Remote(alice, server), Remote(rex, server)
    first = open_stream(f"{server.url}/api/v1/stream", alice.token)
    tid = submit(owner, agentId=rex.id)["id"]
    seen = first.take(2)  # submit, then the direct hire's assign
    first.close()
    other = submit(owner, agentId=rex.id)["id"]  # a new task while disconnected
    provision_sandbox(bot, tid)  # an action that is not a transition: nothing on the stream

    resumed = open_stream(f"{server.url}/api/v1/stream?lastEventId={seen[-1].id}", alice.token)
    missed = resumed.take(2)

    assert [(e.data["taskId"], e.data["type"]) for e in seen] == [(tid, "submit"), (tid, "assign")]
    assert [(e.data["taskId"], e.data["type"]) for e in missed] == [
        (other, "submit"),
        (other, "assign"),
    ]


def test_a_thumbs_down_streams_the_feedback_and_the_refund(start_server, alice, rex):
    server = start_server()
    owner, bot = Remote(alice, server), Remote(rex, server)
    tid = submit(owner, agentId=rex.id)["id"]
    run_to_completion(bot, tid)
    stream = open_stream(task_url(server, tid), alice.token)

    assert thumbs(owner, tid, "down").json() == {"refunded": True}
    events = stream.take(3)

    assert [e.event for e in events] == ["feedback", "status", "refund"]
    assert events[1].data["status"] == "refunded"
    assert events[2].data == {
        "taskId": tid,
        "amount": 2500,
        "refundedTotal": 2500,
        "via": "feedback",
    }


def test_the_assigned_agent_and_a_dashboard_session_may_follow(start_server, alice, rex):
    server = start_server()
    owner = Remote(alice, server)
    tid = submit(owner, agentId=rex.id)["id"]
    as_agent = open_stream(task_url(server, tid), rex.key)
    agent_wide = open_stream(f"{server.url}/api/v1/stream", rex.key)
    browser = Client()
    browser.force_login(alice.owner.user)
    session = open_stream(
        task_url(server, tid), None, cookies={"sessionid": browser.cookies["sessionid"].value}
    )

    start(Remote(rex, server), tid)

    for stream in (as_agent, agent_wide, session):
        assert statuses([stream.next()]) == [("start", "executing")]


def test_an_agent_taken_off_a_task_gets_the_event_and_its_stream_ends(start_server, alice, rex):
    server = start_server()  # the embedded default: it reads what this process records
    tid = submit(Remote(alice, server))["id"]  # routed, in the server, to rex
    assert Remote(rex, server).api.get(f"/api/v1/tasks/{tid}").json()["agentId"] == rex.id
    stream = open_stream(task_url(server, tid), rex.key)

    # Never started: the sweep's rule takes rex off it, as run_sweeps would.
    later = timezone.now() + timedelta(seconds=settings.ASSIGNMENT_TIMEOUT_SECONDS + 1)
    services.task_time_out(task_id=tid, now=later)

    assert statuses([stream.next()]) == [("unassign", "routing")]
    with pytest.raises(AssertionError, match="the stream ended"):
        stream.next()
    assert refused(task_url(server, tid), rex.key).status_code == 404


def test_outsiders_are_refused_with_the_contracts_errors(start_server, alice, rex, charlie, zed):
    server = start_server()
    tid = submit(Remote(alice, server), agentId=rex.id)["id"]
    revoked = ApiSecret.objects.get(owner=alice.owner)
    revoked.revoked_at = revoked.created_at
    revoked.save()
    missing = f"{server.url}/api/v1/tasks/tk_missing/stream"

    answers = {
        "another owner": refused(task_url(server, tid), charlie.token),
        "an unrelated agent": refused(task_url(server, tid), zed.key),
        "a revoked token": refused(task_url(server, tid), alice.token),
        "no secret": refused(task_url(server, tid), None),
        "no secret, every task": refused(f"{server.url}/api/v1/stream", None),
        "a task that does not exist": refused(missing, rex.key),
        "a malformed Last-Event-ID": refused(
            task_url(server, tid), rex.key, headers={"Last-Event-ID": "abc"}
        ),
    }

    assert {who: (r.status_code, error_of(r)["type"]) for who, r in answers.items()} == {
        "another owner": (404, "not_found"),
        "an unrelated agent": (404, "not_found"),
        "a revoked token": (401, "authentication_error"),
        "no secret": (401, "authentication_error"),
        "no secret, every task": (401, "authentication_error"),
        "a task that does not exist": (404, "not_found"),
        "a malformed Last-Event-ID": (400, "validation_error"),
    }
    assert {r.headers["content-type"] for r in answers.values()} == {"application/json"}
    assert error_of(answers["a malformed Last-Event-ID"])["param"] == "Last-Event-ID"


def test_it_sends_the_headers_a_retry_hint_and_keep_alives(start_server, alice, rex):
    server = start_server(STREAM_KEEPALIVE_SECONDS="1")
    tid = submit(Remote(alice, server), agentId=rex.id)["id"]
    stream = open_stream(task_url(server, tid), alice.token)

    headers = stream.response.headers
    assert headers["content-type"].startswith("text/event-stream")
    assert (headers["cache-control"], headers["x-accel-buffering"]) == ("no-cache", "no")
    assert stream.retry == [3000]
    wait_for(lambda: "keep-alive" in stream.comments, "a keep-alive comment", seconds=10)


def test_the_server_stops_within_seconds_with_streams_open(start_server, alice, rex):
    server = start_server()
    tid = submit(Remote(alice, server), agentId=rex.id)["id"]
    streams = [open_stream(task_url(server, tid), alice.token) for _ in range(3)]

    took = server.stop()

    assert took < 6, f"took {took:.1f} s"
    for stream in streams:
        with pytest.raises(AssertionError, match="the stream ended"):
            stream.next(timeout=5)


def test_it_holds_the_stream_open_after_a_terminal_status(start_server, alice, rex):
    server = start_server(STREAM_KEEPALIVE_SECONDS="1")
    owner, bot = Remote(alice, server), Remote(rex, server)
    tid = submit(owner, agentId=rex.id)["id"]
    stream = open_stream(task_url(server, tid), alice.token)
    run_to_completion(bot, tid)
    stream.until(lambda e: e.event == "complete")
    before = stream.comments.count("keep-alive")

    wait_for(lambda: stream.comments.count("keep-alive") > before, "a keep-alive after it")

    assert stream.events.empty()  # neither an event nor the end of the stream
