"""What each recorded event says on the stream, which channels carry it, and when it is sent:
in process, without a server (the server tests are in test_stream.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.db import transaction
from django_eventstream.views import Listener

from city.identity.principals import Principal
from tasks import services, stream
from tasks.models import Task, TaskEvent
from tests.actions import fail, hand_in, run_to_completion, start, submit, thumbs
from tests.factories import GOOD_OUTPUT


def task_of(event) -> str | None:
    """The task an event's records are about (None for an event with nothing to say)."""
    return json.loads(event.data[0][1])["taskId"] if event.data else None


def on_stream(channel: str) -> list[tuple[str | None, str, list[str]]]:
    """(task id, recorded type, SSE event names) of every event the channel replays."""
    return [
        (task_of(e), e.type, [name for name, _ in e.data])
        for e in stream.TaskEventStorage().get_events(channel, 0)
    ]


def replayed(channel: str, type_: str) -> dict[str, dict]:
    """The SSE records (name → data) of the channel's first event of ``type_``."""
    event = next(e for e in stream.TaskEventStorage().get_events(channel, 0) if e.type == type_)
    return {name: json.loads(data) for name, data in event.data}


def test_a_completed_task_says_status_at_each_transition_then_complete(completed):
    tid = completed["id"]

    assert [(t, names) for _, t, names in on_stream(stream.task_channel(tid))] == [
        ("submit", ["status"]),
        ("assign", ["status"]),
        ("sandbox_provision", []),
        ("start", ["status"]),
        ("complete", ["status"]),
        ("pass", ["status", "complete"]),
    ]
    records = replayed(stream.task_channel(tid), "pass")
    assert records["complete"] == {
        "taskId": tid,
        "output": GOOD_OUTPUT,
        "qualityScore": completed["qualityScore"],
        "creditsCharged": 2500,
    }
    assert {k: records["status"][k] for k in ("taskId", "status", "type", "from", "to")} == {
        "taskId": tid,
        "status": "completed",
        "type": "pass",
        "from": "quality_check",
        "to": "completed",
    }


@pytest.mark.parametrize(
    ("how", "reason"),
    [("fail", "execution_error"), ("cancel", "cancelled"), ("reject", "quality_gate")],
)
def test_a_failure_says_status_then_error_with_its_reason(alice, rex, how, reason):
    tid = submit(alice, agentId=rex.id)["id"]
    if how == "fail":
        start(rex, tid)
        fail(rex, tid, errorMessage="the repository is gone")
    elif how == "cancel":
        assert alice.api.post(f"/api/v1/tasks/{tid}/cancel").status_code == 200
    else:
        start(rex, tid)
        assert hand_in(rex, tid, output={}).status_code == 200

    terminal = {"fail": "fail", "cancel": "cancel", "reject": "reject"}[how]
    records = replayed(stream.task_channel(tid), terminal)
    task = Task.objects.get(pk=tid)

    assert list(records) == ["status", "error"]
    assert records["status"]["status"] == "failed"
    assert records["error"] == {
        "taskId": tid,
        "reason": reason,
        "errorMessage": task.error_message,
    }


def test_feedback_refunds_and_disputes_are_events_of_their_own(alice, rex):
    down, disputed = (submit(alice, agentId=rex.id)["id"] for _ in range(2))
    for tid in (down, disputed):
        run_to_completion(rex, tid)
    thumbs(alice, down, "down")
    filed = alice.api.post(
        f"/api/v1/tasks/{disputed}/disputes",
        {"reason": "wrong_output", "description": "It reviewed another file."},
    ).json()

    assert [(t, names) for _, t, names in on_stream(stream.task_channel(down))][-2:] == [
        ("feedback", ["feedback"]),
        ("refund", ["status", "refund"]),
    ]
    assert replayed(stream.task_channel(disputed), "dispute")["dispute"] == {
        "taskId": disputed,
        "disputeId": filed["id"],
        "reason": "wrong_output",
        "status": "filed",
    }


def test_each_principal_channel_carries_the_tasks_it_may_see(alice, charlie, rex, zed):
    alices = submit(alice, agentId=rex.id)["id"]
    charlies = submit(charlie, agentId=zed.id)["id"]

    def tasks_on(channel: str) -> set[str]:
        return {tid for tid, _, _ in on_stream(channel) if tid}

    assert tasks_on(f"owner-{alice.owner.pk}") == {alices}
    assert tasks_on(f"owner-{charlie.owner.pk}") == {charlies}
    assert tasks_on(f"agent-{rex.id}") == {alices}
    assert tasks_on(f"agent-{zed.id}") == {charlies}
    assert set(stream.channels_of(Task.objects.get(pk=alices))) == {
        f"task-{alices}",
        f"owner-{alice.owner.pk}",
        f"agent-{rex.id}",
    }


@pytest.fixture
def listening(settings):
    """A listener on every channel, in this process (the embedded default's fan-out)."""
    del settings.EVENTSTREAM_REDIS
    loop = asyncio.new_event_loop()
    listeners = []

    def listen(channel: str) -> Listener:
        listener = Listener()
        listener.loop = loop
        listener.channels = {channel}
        stream.hub().add_listener(listener)
        listeners.append(listener)
        return listener

    try:
        yield listen
    finally:
        for listener in listeners:
            stream.hub().remove_listener(listener)
        loop.close()


def test_events_are_sent_after_commit_and_never_for_a_rollback(listening, alice, rex):
    owner_channel = listening(f"owner-{alice.owner.pk}")

    with pytest.raises(RuntimeError), transaction.atomic():
        services.task_submit(
            principal=Principal(owner=alice.owner),
            task_type="code_review",
            input={"description": "never happened"},
            max_budget=5000,
            agent_id=rex.id,
        )
        assert owner_channel.channel_items == {}  # not before the commit
        raise RuntimeError("rolled back")
    assert owner_channel.channel_items == {}

    tid = submit(alice, agentId=rex.id)["id"]

    sent = owner_channel.channel_items[f"owner-{alice.owner.pk}"]
    assert [(task_of(e), e.type) for e in sent] == [
        (tid, "submit"),
        (tid, "assign"),
    ]


def test_a_redis_message_reaches_only_the_streams_here_that_show_its_events(
    listening, alice, rex, caplog
):
    owner = f"owner-{alice.owner.pk}"
    tid = submit(alice, agentId=rex.id)["id"]
    recorded = list(TaskEvent.objects.filter(task_id=tid).select_related("task").order_by("id"))
    on_owner = listening(owner)  # listening from now on: the submit itself is not on it
    lines = [stream._wire(row, stream.channels_of(row.task)) for row in recorded]
    lines.append("agent-ag_elsewhere\t{not JSON, and never decoded: nobody here shows it")
    lines.append(f"{owner}\t{{not JSON")  # shown here, so decoded: malformed, and skipped

    stream.hub()._receive("\n".join(lines).encode())

    sent = on_owner.channel_items[owner]
    assert [(e.type, e.id) for e in sent] == [(row.type, row.pk) for row in recorded]
    assert all(task_of(e) == tid for e in sent)
    assert [r.getMessage()[:40] for r in caplog.records if "malformed" in r.getMessage()] == [
        f"stream: ignored a malformed message b'{owner}"[:40]
    ]
