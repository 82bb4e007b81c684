"""The live stream: every recorded task event, as Server-Sent Events, resumable from TaskEvent.

Publishing. ``tasks.events.record`` calls :func:`publish` once the recording transaction has
committed, in whichever process recorded it (a web request, a Celery worker, the sweeps). Each
``TaskEvent`` becomes a group of SSE records in API.md's order (``status`` first, then
``complete`` or ``error``; ``feedback``, ``dispute``, ``refund``), encoded once, and goes to three
channels: the task's own, its caller's and its assignee's. With ``EVENTSTREAM_REDIS`` (set from
``REDIS_URL``) it crosses processes over one Redis pub/sub channel in django-eventstream's message
format; on the embedded default it is queued in process.

Serving. Each open stream is a django-eventstream ``Listener`` on one channel of the process's
:class:`Hub` (django-eventstream's ``ListenerManager``, fed by a Redis subscriber that reconnects,
where the library's own gives up at the first error). The views are ordinary API views — the same
authentication, permissions, throttling and errors as every endpoint — that answer with an async
streaming response, served by the ASGI server.

One log. The stream's event ids are ``TaskEvent`` ids and :class:`TaskEventStorage` (a
django-eventstream storage class) reads a channel's events from ``TaskEvent``: a reconnect with
``Last-Event-ID`` replays what it missed, in order, and nothing is stored twice. A listener is
registered before the stream reads the table, and every id it sends is remembered, so an event
that is both read and announced goes out once.

Order. One task's events are recorded under its row lock, so their ids rise in commit order and a
task's stream resumes exactly. Across tasks (``GET /api/v1/stream``) two transactions may commit
out of id order; an event announced after a higher id was sent still goes out (with the highest
id sent as its ``id:``, so a reconnect neither repeats nor skips what came before), and a stream
only misses it if the connection drops in the milliseconds between the two commits.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Max, Q, QuerySet
from django.http import StreamingHttpResponse
from django_eventstream.event import Event
from django_eventstream.storage import StorageBase
from django_eventstream.utils import add_default_headers, sse_encode_event
from django_eventstream.views import Listener, ListenerManager

from city.identity.principals import Principal
from tasks.models import Status, Task, TaskEvent
from tasks.serializers import TaskEventSerializer

logger = logging.getLogger(__name__)

# Recorded types that change who works on the task without changing its status.
_ASSIGNMENTS = ("assign", "unassign")
# Recorded types that are also an SSE event of their own, carrying the event's data.
_OWN_EVENTS = ("feedback", "dispute", "refund")


# Channels: one per task, one per principal (every task it may see).


def task_channel(task_id: str) -> str:
    return f"task-{task_id}"


def principal_channel(principal: Principal) -> str:
    return f"agent-{principal.agent.pk}" if principal.is_agent else f"owner-{principal.owner.pk}"


def channels_of(task: Task) -> list[str]:
    """The channels an event of ``task`` goes to: the task's, its caller's, its assignee's."""
    channels = [task_channel(task.pk)]
    if task.caller_owner_id:
        channels.append(f"owner-{task.caller_owner_id}")
    if task.caller_agent_id:
        channels.append(f"agent-{task.caller_agent_id}")
    if task.agent_id and task.agent_id != task.caller_agent_id:
        channels.append(f"agent-{task.agent_id}")
    return channels


def _events_on(channel: str) -> QuerySet[TaskEvent]:
    """The recorded events a channel carries, as the live side sends them."""
    kind, _, key = channel.partition("-")
    if kind == "task":
        return TaskEvent.objects.filter(task_id=key)
    if kind == "owner":
        return TaskEvent.objects.filter(task__caller_owner_id=key)
    if kind == "agent":
        return TaskEvent.objects.filter(Q(task__caller_agent_id=key) | Q(task__agent_id=key))
    raise ValueError(f"unknown stream channel {channel!r}")


# What a recorded event says on the stream.


def records(recorded: TaskEvent, task: Task) -> list[tuple[str, str]]:
    """The SSE records of one recorded event: (event name, JSON data), in API.md's order.

    ``task`` is read for what a terminal transition reports (output, score, charge; failure
    reason), which never changes once the task got there: live and replayed records agree.
    """
    out: list[tuple[str, dict]] = []
    base = {"taskId": task.pk}
    moved = recorded.from_status != recorded.to_status
    if moved or recorded.type in _ASSIGNMENTS:
        out.append(
            (
                "status",
                {**base, "status": recorded.to_status, **TaskEventSerializer.render(recorded)},
            )
        )
    if moved and recorded.to_status == Status.COMPLETED:
        out.append(
            (
                "complete",
                {
                    **base,
                    "output": task.output,
                    "qualityScore": task.quality_score,
                    "creditsCharged": task.credits_charged,
                },
            )
        )
    elif moved and recorded.to_status == Status.FAILED:
        out.append(
            ("error", {**base, "reason": task.failure_reason, "errorMessage": task.error_message})
        )
    if recorded.type in _OWN_EVENTS:
        out.append((recorded.type, {**base, **recorded.data}))
    return [(name, json.dumps(data, cls=DjangoJSONEncoder)) for name, data in out]


class TaskEventStorage(StorageBase):
    """django-eventstream's storage over ``TaskEvent``: read-only, since ``tasks.events.record``
    is the one writer; an event's id is its row's id."""

    def append_event(self, channel, event_type, data):
        raise NotImplementedError("task events are recorded by tasks.events.record")

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        rows = _events_on(channel).filter(id__gt=last_id).select_related("task").order_by("id")
        return [Event(channel, row.type, records(row, row.task), id=row.pk) for row in rows[:limit]]

    def get_current_id(self, channel: str) -> int:
        # Any id at or above the newest event will do as "from now on": the table's newest is
        # one index probe, whatever the channel.
        return TaskEvent.objects.aggregate(newest=Max("id"))["newest"] or 0


# Publishing, after commit, in any process.

_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis(**settings.EVENTSTREAM_REDIS)
    return _redis_client


def publish(recorded: Sequence[TaskEvent]) -> None:
    """Send committed events to every stream that shows them (a ``tasks.events`` hook)."""
    messages = []
    for row in recorded:
        group = records(row, row.task)
        if group:
            messages += [
                Event(channel, row.type, group, id=row.pk) for channel in channels_of(row.task)
            ]
    if not messages:
        return
    if getattr(settings, "EVENTSTREAM_REDIS", None):
        pipe = _redis().pipeline(transaction=False)
        for message in messages:
            pipe.publish(settings.STREAM_REDIS_CHANNEL, _wire(message))
        pipe.execute()
    else:
        manager = hub()
        for message in messages:
            manager.add_to_queues(message.channel, message)


def _wire(event: Event) -> str:
    """django-eventstream's Redis message for one event on one channel."""
    return json.dumps(
        {"channel": event.channel, "event_type": event.type, "data": event.data, "pub_id": event.id}
    )


# Receiving, in the ASGI server's process.


class Hub(ListenerManager):
    """django-eventstream's listener manager for this process, fed by a Redis subscriber that
    reconnects when ``EVENTSTREAM_REDIS`` is set (after a reconnect every stream reads TaskEvent
    for what it may have missed), else only by :func:`publish` in this process."""

    def __init__(self) -> None:
        # The library's attributes, without its own Redis listener (no reconnects, a fixed
        # channel name), which its __init__ would make whenever EVENTSTREAM_REDIS is set.
        self.lock = threading.Lock()
        self.listeners_by_channel = {}
        self.redis_listener = None
        self.redis_listener_started = False
        self._subscriber: asyncio.Task | None = None
        self._subscribed: asyncio.Event | None = None

    def add_listener(self, listener: Listener) -> None:
        if getattr(settings, "EVENTSTREAM_REDIS", None):
            self._start_subscriber()
        super().add_listener(listener)

    def _start_subscriber(self) -> None:
        loop = asyncio.get_running_loop()
        running = self._subscriber is not None and not self._subscriber.done()
        if running and self._subscriber.get_loop() is loop:
            return
        self._subscribed = asyncio.Event()
        self._subscriber = loop.create_task(self._subscribe(self._subscribed))

    async def subscribed(self, timeout: float) -> bool:
        """Wait until messages published from now on reach this process (Redis mode)."""
        if self._subscribed is None:
            return True
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def _subscribe(self, subscribed: asyncio.Event) -> None:
        from redis.asyncio import Redis

        delay, reconnecting = 0.2, False
        while True:
            client = Redis(**settings.EVENTSTREAM_REDIS)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(settings.STREAM_REDIS_CHANNEL)
                    subscribed.set()
                    if reconnecting:
                        self.resync_all()
                    delay = 0.2
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("stream: Redis subscriber lost (%s); reconnecting", exc)
            finally:
                subscribed.clear()
                await client.aclose()
            reconnecting = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _receive(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            event = Event(
                message["channel"], message["event_type"], message["data"], id=message["pub_id"]
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("stream: ignored a malformed message %r", raw[:200])
            return
        self.add_to_queues(event.channel, event)

    def resync_all(self) -> None:
        """Have every stream read TaskEvent for what it may have missed."""
        with self.lock:
            listeners = {
                listener for group in self.listeners_by_channel.values() for listener in group
            }
            for listener in listeners:
                listener.overflow = True
                listener.wake_threadsafe()

    def listener_count(self) -> int:
        with self.lock:
            return sum(len(group) for group in self.listeners_by_channel.values())


_hub: Hub | None = None


def hub() -> Hub:
    global _hub
    if _hub is None:
        _hub = Hub()
    return _hub


# One open stream.


@dataclass
class Subscription:
    """What one stream follows, decided by the view before the response starts."""

    channel: str
    principal: Principal
    last_id: int | None  # Last-Event-ID: replay what came after it; None: only new events
    task_id: str | None = None  # a task's own stream (re-checked after an unassignment)
    sent: deque = field(default_factory=lambda: deque(maxlen=1024))
    cursor: int = 0  # the highest id sent (or the starting point)

    def fresh(self, event: Event) -> bool:
        return event.id is not None and event.id not in self.sent

    def encode(self, event: Event) -> str:
        """The event's records; the ``id:`` goes on the last, so that a connection dropped in
        between repeats the group rather than losing its end."""
        self.sent.append(event.id)
        self.cursor = max(self.cursor, event.id)
        last = len(event.data) - 1
        return "".join(
            sse_encode_event(name, data, event_id=self.cursor if i == last else None)
            for i, (name, data) in enumerate(event.data)
        )


class EventStreamResponse(StreamingHttpResponse):
    """Made by the view, in its request's thread, once the caller is known to be allowed."""

    def __init__(self, subscription: Subscription) -> None:
        super().__init__(follow(subscription), content_type="text/event-stream")
        add_default_headers(self, request=None)
        # The request ends only when the stream does; its thread is done with the database now.
        connection.close()


_PAGE = 200


def _released(read):
    """``read`` in the request's thread, its database connection handed back afterwards: under
    ASGI each request has a thread and a connection of its own, and a thousand open streams
    must not hold a thousand connections between their occasional reads."""

    @functools.wraps(read)
    def run(*args):
        try:
            return read(*args)
        finally:
            connection.close()

    return sync_to_async(run)


@_released
def _read(channel: str, after: int) -> list[Event]:
    return TaskEventStorage().get_events(channel, after, limit=_PAGE)


@_released
def _newest(channel: str) -> int:
    return TaskEventStorage().get_current_id(channel)


@_released
def _still_visible(subscription: Subscription) -> bool:
    from tasks.selectors import visible_to

    return Task.objects.filter(visible_to(subscription.principal), pk=subscription.task_id).exists()


async def _catch_up(subscription: Subscription) -> list[Event]:
    """Everything in TaskEvent after the cursor that was not sent yet, oldest first."""
    found: list[Event] = []
    cursor = subscription.cursor
    while True:
        events = await _read(subscription.channel, cursor)
        found += [e for e in events if subscription.fresh(e)]
        if len(events) < _PAGE:
            return found
        cursor = events[-1].id


async def follow(subscription: Subscription) -> AsyncIterator[str]:
    manager = hub()
    listener = Listener()
    listener.user_id = subscription.principal.key
    listener.channels = {subscription.channel}
    listener.assign_loop()
    manager.add_listener(listener)  # before reading the table: nothing falls in between
    keepalive = settings.STREAM_KEEPALIVE_SECONDS
    poll = settings.STREAM_POLL_SECONDS
    try:
        await manager.subscribed(timeout=5)
        opening = f"retry: {settings.STREAM_RETRY_MS}\n: stream open\n\n"
        if subscription.last_id is None:
            subscription.cursor = await _newest(subscription.channel)
            yield opening
        else:
            subscription.cursor = subscription.last_id
            missed = await _catch_up(subscription)
            yield opening + "".join(subscription.encode(e) for e in missed)
        written = polled = time.monotonic()
        while True:
            now = time.monotonic()
            wait = max(0.0, min(written + keepalive, polled + poll) - now)
            try:
                await asyncio.wait_for(listener.aevent.wait(), wait)
            except TimeoutError:
                pass
            with manager.lock:
                items = listener.channel_items.get(subscription.channel, [])
                overflow, listener.overflow = listener.overflow, False
                listener.channel_items = {}
                listener.aevent.clear()
            fresh = [e for e in items if subscription.fresh(e)]
            body = "".join(subscription.encode(e) for e in fresh)
            now = time.monotonic()
            if overflow or now >= polled + poll:
                caught_up = await _catch_up(subscription)
                body += "".join(subscription.encode(e) for e in caught_up)
                fresh += caught_up
                polled = now
            if not body and now >= written + keepalive:
                body = ": keep-alive\n\n"
            if body:
                yield body
                written = now
            if subscription.task_id and any(e.type == "unassign" for e in fresh):
                if not await _still_visible(subscription):
                    return  # the agent was taken off the task: its stream ends here
    finally:
        manager.remove_listener(listener)
