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
where the library's own gives up at the first error, and by one poll of ``TaskEvent`` per process
for what no message brought). The views are ordinary API views — the same
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
only misses it if the connection drops, or the stream opens, in the milliseconds between the two
commits.

Cost. An open stream holds no thread and no database connection: the request's thread is let go
once the view has authorised it, and each later read takes a pooled connection and gives it back
(``bench/stream``; docs/performance.md).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from asgiref.sync import SyncToAsync, sync_to_async
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
    return _channels(task.pk, task.caller_owner_id, task.caller_agent_id, task.agent_id)


def _channels(task_id, caller_owner_id, caller_agent_id, agent_id) -> list[str]:
    channels = [task_channel(task_id)]
    if caller_owner_id:
        channels.append(f"owner-{caller_owner_id}")
    if caller_agent_id:
        channels.append(f"agent-{caller_agent_id}")
    if agent_id and agent_id != caller_agent_id:
        channels.append(f"agent-{agent_id}")
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
    """Send committed events to every stream that shows them (a ``tasks.events`` hook).

    It runs after every commit that records an event, on the request path: in process, an event
    nobody here listens to is not even encoded."""
    if getattr(settings, "EVENTSTREAM_REDIS", None):
        # One message for the whole commit, one line per event (see _wire): every web process
        # receives it, and one with no stream on an event's channels does not even decode it.
        wire = "\n".join(_wire(row, channels_of(row.task)) for row in recorded)
        if wire:
            _redis().publish(settings.STREAM_REDIS_CHANNEL, wire)
        return
    manager = hub()
    listening = manager.listeners_by_channel
    for row in recorded:
        channels = [channel for channel in channels_of(row.task) if channel in listening]
        group = records(row, row.task) if channels else []
        if group:
            for channel in channels:
                manager.add_to_queues(channel, Event(channel, row.type, group, id=row.pk))


def _wire(row: TaskEvent, channels: list[str]) -> str:
    """One event's line in a Redis message: the channels it goes to, a tab, then the event as
    JSON (which holds no raw tab or newline)."""
    event = {"event_type": row.type, "data": records(row, row.task), "pub_id": row.pk}
    return f"{' '.join(channels)}\t{json.dumps(event)}"


# Receiving, in the ASGI server's process.


class Hub(ListenerManager):
    """django-eventstream's listener manager for this process, fed three ways:

    - by :func:`publish` in this process (the embedded default, without Redis);
    - by a Redis subscriber when ``EVENTSTREAM_REDIS`` is set, which reconnects after an error
      and then has every stream read TaskEvent for what it may have missed;
    - by one read of TaskEvent every ``STREAM_POLL_SECONDS`` for the whole process (not one per
      stream): events that no message announced, such as those ``run_sweeps`` records in its
      own process on the embedded default, or a publish that failed.
    """

    def __init__(self) -> None:
        # The library's attributes, without its own Redis listener (no reconnects, a fixed
        # channel name), which its __init__ would make whenever EVENTSTREAM_REDIS is set.
        self.lock = threading.Lock()
        self.listeners_by_channel = {}
        self.redis_listener = None
        self.redis_listener_started = False
        self._tasks: list[asyncio.Task] = []
        self._subscribed: asyncio.Event | None = None
        self._seen: set[int] = set()  # ids of the events recently queued, by any way
        self._seen_order: deque[int] = deque()

    def add_to_queues(self, channel: str, event: Event) -> None:
        if event.id is not None and event.id not in self._seen:
            self._seen.add(event.id)
            self._seen_order.append(event.id)
            if len(self._seen_order) > 10_000:
                self._seen.discard(self._seen_order.popleft())
        super().add_to_queues(channel, event)

    def add_listener(self, listener: Listener) -> None:
        self._start()
        super().add_listener(listener)

    def _start(self) -> None:
        """Start the process's subscriber and poller on the running loop, once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a listener added from synchronous code (a test) is fed by publish only
        if self._tasks and all(not t.done() and t.get_loop() is loop for t in self._tasks):
            return
        for task in self._tasks:
            task.cancel()
        self._tasks = [loop.create_task(self._poll())]
        if getattr(settings, "EVENTSTREAM_REDIS", None):
            self._subscribed = asyncio.Event()
            self._tasks.append(loop.create_task(self._subscribe(self._subscribed)))
        else:
            self._subscribed = None

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
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        delay, reconnecting = 0.2, False
        while True:
            client = Redis(
                **settings.EVENTSTREAM_REDIS,
                # Named, so that an operator can tell the stream's subscribers in CLIENT LIST.
                client_name=f"city-stream:{settings.STREAM_REDIS_CHANNEL}",
                # No silent reconnect inside redis-py: what was published while the connection
                # was down would be lost. A lost connection ends up here, and after the
                # reconnect every stream reads TaskEvent for it.
                retry=Retry(NoBackoff(), 0),
            )
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
        """Queue a message's events (see _wire) for the streams here that show them."""
        for line in raw.split(b"\n"):
            head, _, body = line.partition(b"\t")
            channels = head.decode(errors="replace").split(" ")
            listening = [c for c in channels if c in self.listeners_by_channel]
            if not listening:
                continue  # nobody here shows it: not even decoded
            try:
                message = json.loads(body)
                kind, data, event_id = message["event_type"], message["data"], message["pub_id"]
            except (ValueError, KeyError, TypeError):
                logger.warning("stream: ignored a malformed message %r", line[:200])
                continue
            for channel in listening:
                self.add_to_queues(channel, Event(channel, kind, data, id=event_id))

    async def _poll(self) -> None:
        """Every STREAM_POLL_SECONDS, the keys of the events recorded since the last look (one
        light query); full rows only for those no message brought and someone here shows."""
        cursor = None
        while True:
            try:
                if cursor is None:
                    cursor = await _newest()
                await asyncio.sleep(max(settings.STREAM_POLL_SECONDS, 0.5))
                if not self.listeners_by_channel:
                    cursor = None  # nobody listens: start afresh with the next stream
                    continue
                while True:
                    keys = await _recorded_after(cursor)
                    missed = [
                        event_id
                        for event_id, *task in keys
                        if event_id not in self._seen
                        and any(c in self.listeners_by_channel for c in _channels(*task))
                    ]
                    for row in await _recorded(missed) if missed else ():
                        self.dispatch(row)
                    if keys:
                        cursor = keys[-1][0]
                    if len(keys) < _PAGE:
                        break
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("stream: reading TaskEvent failed; trying again")
                await asyncio.sleep(max(settings.STREAM_POLL_SECONDS, 0.5))

    def dispatch(self, row: TaskEvent) -> None:
        """Queue a recorded event for the streams of this process that show it."""
        group = records(row, row.task)
        for channel in channels_of(row.task):
            if channel in self.listeners_by_channel:
                self.add_to_queues(channel, Event(channel, row.type, group, id=row.pk))

    def resync_all(self) -> None:
        """Have every stream read TaskEvent for what it may have missed."""
        with self.lock:
            listeners = {
                listener for group in self.listeners_by_channel.values() for listener in group
            }
            for listener in listeners:
                listener.overflow = True
                listener.wake_threadsafe()


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
    start: int = 0  # nothing at or below this id is sent: the client has it, or asked for news
    cursor: int = 0  # the highest id sent (or the start)
    _sent: set = field(default_factory=set)
    _order: deque = field(default_factory=deque)

    def fresh(self, event: Event) -> bool:
        return event.id is not None and event.id > self.start and event.id not in self._sent

    def encode(self, event: Event) -> str:
        """The event's records; the ``id:`` goes on the last, so that a connection dropped in
        between repeats the group rather than losing its end."""
        self._sent.add(event.id)
        self._order.append(event.id)
        if len(self._order) > 1024:  # remember the recent ids only: older ones are below
            self._sent.discard(self._order.popleft())  # the cursor and never come back live
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
    """``read`` on a thread of the loop's shared pool, its database connection handed back to
    the pool afterwards: a thousand open streams must hold neither a thousand threads nor a
    thousand connections between their occasional reads."""

    @functools.wraps(read)
    def run(*args):
        try:
            return read(*args)
        finally:
            connection.close()

    return sync_to_async(run, thread_sensitive=False)


def _let_the_request_thread_go() -> None:
    """Under ASGI, Django runs a request's sync code (middleware, the view) on a thread of its
    own that lives until the request ends: for a stream, as long as the client listens. Once the
    view is done, shut that thread down; a thread-sensitive call later in this request (closing
    the response, at the end) gets a new one. (asgiref's per-request executors; with another
    asgiref that keeps them elsewhere, the thread just stays.)"""
    context = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    current = context.get(None) if context is not None else None
    if current is not None and executors is not None:
        executor = executors.pop(current, None)
        if executor is not None:
            executor.shutdown(wait=False)


@_released
def _read(channel: str, after: int) -> list[Event]:
    return TaskEventStorage().get_events(channel, after, limit=_PAGE)


@_released
def _newest(channel: str = "") -> int:
    return TaskEventStorage().get_current_id(channel)


@_released
def _recorded_after(after: int) -> list[tuple]:
    """(event id, task id, caller owner, caller agent, assignee) of the events after ``after``."""
    keys = TaskEvent.objects.filter(id__gt=after).order_by("id")
    return list(
        keys.values_list(
            "id", "task_id", "task__caller_owner_id", "task__caller_agent_id", "task__agent_id"
        )[:_PAGE]
    )


@_released
def _recorded(ids: list[int]) -> list[TaskEvent]:
    return list(TaskEvent.objects.filter(id__in=ids).select_related("task").order_by("id"))


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
    _let_the_request_thread_go()
    keepalive = settings.STREAM_KEEPALIVE_SECONDS
    try:
        await manager.subscribed(timeout=5)
        opening = f"retry: {settings.STREAM_RETRY_MS}\n: stream open\n\n"
        if subscription.last_id is None:
            subscription.start = subscription.cursor = await _newest(subscription.channel)
            yield opening
        else:
            subscription.start = subscription.cursor = subscription.last_id
            missed = await _catch_up(subscription)
            yield opening + "".join(subscription.encode(e) for e in missed)
        while True:
            try:
                await asyncio.wait_for(listener.aevent.wait(), keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            with manager.lock:
                items = listener.channel_items.get(subscription.channel, [])
                overflow, listener.overflow = listener.overflow, False
                listener.channel_items = {}
                listener.aevent.clear()
            fresh = [e for e in items if subscription.fresh(e)]
            body = "".join(subscription.encode(e) for e in fresh)
            if overflow:  # more than the listener queues, or Redis came back: read the rest
                caught_up = await _catch_up(subscription)
                body += "".join(subscription.encode(e) for e in caught_up)
                fresh += caught_up
            if body:
                yield body
            if subscription.task_id and any(e.type == "unassign" for e in fresh):
                if not await _still_visible(subscription):
                    return  # the agent was taken off the task: its stream ends here
    finally:
        manager.remove_listener(listener)
