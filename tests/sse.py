"""A Server-Sent Events client for tests: reads a stream on a thread of its own and hands each
event over through a queue, so a test waits for an event with a deadline, never a sleep."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field

import httpx


@dataclass
class SseEvent:
    event: str
    id: str | None
    data: dict


@dataclass
class Stream:
    """One open stream: ``next()`` is its next event; comments and ``retry:`` are kept too."""

    response: httpx.Response
    events: queue.Queue = field(default_factory=queue.Queue)
    comments: list[str] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    last_id: str | None = None
    opened: threading.Event = field(default_factory=threading.Event)
    _client: httpx.Client | None = None
    _context: object = None

    def next(self, timeout: float = 15) -> SseEvent:
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s") from None
        if isinstance(item, BaseException):
            raise AssertionError(f"the stream ended: {item!r}")
        return item

    def take(self, count: int, timeout: float = 15) -> list[SseEvent]:
        return [self.next(timeout) for _ in range(count)]

    def until(self, predicate, timeout: float = 30) -> list[SseEvent]:
        """Every event up to and including the first that ``predicate`` accepts."""
        seen = []
        while True:
            event = self.next(timeout)
            seen.append(event)
            if predicate(event):
                return seen

    def nothing_more(self, within: float) -> bool:
        """True when no event arrives within ``within`` seconds (for "exactly once")."""
        try:
            item = self.events.get(timeout=within)
        except queue.Empty:
            return True
        self.events.put(item)
        return False

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self._client.close()

    def _read(self) -> None:
        name, data, event_id = "message", [], None
        try:
            for line in self.response.iter_lines():
                if line == "":
                    if data:
                        if event_id is not None:
                            self.last_id = event_id
                        self.events.put(SseEvent(name, event_id, json.loads("\n".join(data))))
                    name, data, event_id = "message", [], None
                elif line.startswith(":"):
                    self.comments.append(line[1:].strip())
                else:
                    key, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if key == "event":
                        name = value
                    elif key == "data":
                        data.append(value)
                    elif key == "id":
                        event_id = value
                    elif key == "retry":
                        self.retry.append(int(value))
                        self.opened.set()
            self.events.put(EOFError("closed by the server"))
        except Exception as exc:  # the test closed it, or the server went away
            self.events.put(exc)


def open_stream(
    url: str,
    secret: str | None,
    last_event_id: str | None = None,
    cookies: dict[str, str] | None = None,
) -> Stream:
    """Connect and check the response is a stream; then read it in the background."""
    headers = {"Accept": "text/event-stream"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    client = httpx.Client(timeout=httpx.Timeout(10, read=None), cookies=cookies)
    context = client.stream("GET", url, headers=headers)
    response = context.__enter__()
    stream = Stream(response, _client=client, _context=context)
    if response.status_code != 200:
        response.read()
        stream.close()
        raise AssertionError(f"{response.status_code}: {response.text}")
    threading.Thread(target=stream._read, daemon=True).start()
    # The server sends its retry hint once it follows the stream: from then on nothing is missed.
    if not stream.opened.wait(timeout=15):
        stream.close()
        raise AssertionError("the stream did not open within 15 s")
    return stream


def refused(url: str, secret: str | None, headers: dict | None = None) -> httpx.Response:
    """The response to a stream request that is expected to be refused (read in full)."""
    headers = {"Accept": "text/event-stream", **(headers or {})}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 200:
                raise AssertionError("the stream was opened")
            response.read()
            return response
