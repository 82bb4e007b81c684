"""Requests through City's ASGI application (city.asgi), in-process, as an ASGI server (uvicorn)
makes them."""

from __future__ import annotations

import asyncio

from city.asgi import SyncChainASGIHandler
from city.request_threads import RequestThreads


def asgi_request(
    method: str, path: str, *, headers: dict[str, str] | None = None, chunks: list[bytes] = ()
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; the body arrives in ``chunks``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    sent: list[dict] = []

    async def exchange():
        done = asyncio.Event()

        async def receive():
            if messages:
                return messages.pop(0)
            await done.wait()  # the client stays connected until the response is complete
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        # As city.asgi.application, with threads of this event loop's own.
        await RequestThreads(SyncChainASGIHandler(), size=2)(scope, receive, send)

    asyncio.run(exchange())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body
