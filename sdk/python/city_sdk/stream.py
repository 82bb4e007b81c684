"""Following City's Server-Sent Events, reconnecting with ``Last-Event-ID`` so that a dropped
connection loses nothing and repeats nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx

from city_sdk._http import Transport, retryable
from city_sdk.errors import APIConnectionError, error_from_response, retry_after_seconds
from city_sdk.models import Event

DEFAULT_RETRY_SECONDS = 3.0
# The server sends a keep-alive at least every 15 s: a connection silent for longer is dead.
READ_TIMEOUT_SECONDS = 60.0


class EventStream(Iterator[Event]):
    """An iterator of a stream's events that reconnects after a dropped connection.

    It resumes from the last event id received (or ``last_event_id``), waiting as the server's
    ``retry:`` hint asks; it gives up after ``max_retries`` connections in a row fail to open.
    The server keeps a stream open after a task's end: stop iterating, or ``close()`` it (from
    any thread), to end it.
    """

    def __init__(self, transport: Transport, path: str, last_event_id: str | None = None):
        self.last_event_id = last_event_id
        self.retry_seconds = DEFAULT_RETRY_SECONDS
        self._transport = transport
        self._path = path
        self._response: httpx.Response | None = None
        self._closed = False
        self._events = self._follow()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        response = self._response
        if response is not None:
            # Shutting the socket wakes a read blocked on another thread; closing alone would not.
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        try:
            self._events.close()
        except ValueError:  # running on another thread: it ends as its read fails
            pass

    def _follow(self) -> Iterator[Event]:
        failures = 0  # connections in a row that did not open
        # The records of a group before its last carry no id: a reconnect sends the group again
        # from its start, and these, already handed out, are skipped.
        unacknowledged: list[Event] = []
        while not self._closed:
            delay = None  # the server's retry: hint, read on this connection
            try:
                with self._connect() as response:
                    if response.status_code != 200:
                        response.read()
                        error = error_from_response(response)
                        if failures >= self._transport.max_retries or not retryable(
                            response.status_code, error
                        ):
                            raise error
                        failures += 1
                        hint = retry_after_seconds(response)
                        delay = max(self.retry_seconds, self._transport.backoff(failures, hint))
                    else:
                        failures = 0
                        self._response = response
                        repeated = list(unacknowledged) if self.last_event_id else []
                        for event in self._parse(response):
                            if repeated and repeated[0] == event:
                                repeated.pop(0)
                                continue
                            repeated = []
                            if event.id is not None:
                                self.last_event_id = event.id
                                unacknowledged = []
                            elif self.last_event_id is not None:
                                unacknowledged.append(event)
                            yield event
                        failures += 1  # the server ended it: reconnect as after a drop
            except httpx.TransportError as exc:
                if self._closed:
                    return
                if failures >= self._transport.max_retries:
                    raise APIConnectionError(f"the stream {self._path} failed: {exc!r}") from exc
                failures += 1
            finally:
                self._response = None
            if not self._closed:
                self._transport.sleep(self.retry_seconds if delay is None else delay)

    def _connect(self):
        headers = {
            **self._transport.headers,
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
        }
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(self._transport.timeout, read=READ_TIMEOUT_SECONDS)
        url = self._transport.url(self._path)
        return self._transport.client.stream("GET", url, headers=headers, timeout=timeout)

    def _parse(self, response: httpx.Response) -> Iterator[Event]:
        """The events of one connection, as the SSE specification frames them."""
        name, data, event_id = "", [], None
        for line in response.iter_lines():
            if self._closed:
                return
            if line == "":
                if data:
                    yield Event(name or "message", event_id, _json("\n".join(data)))
                name, data, event_id = "", [], None
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
            elif key == "id" and "\0" not in value:
                event_id = value
            elif key == "retry" and value.isdigit():
                self.retry_seconds = int(value) / 1000


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}
