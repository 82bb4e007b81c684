"""A body sent chunked (no Content-Length) is read like any other, under the same size limit,
through the WSGI interface as gunicorn speaks it and the ASGI interface as uvicorn does."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler

from tasks.models import Task
from tests.factories import task_body


def wsgi_post(path: str, body: bytes, secret: str, *, terminated: bool = True):
    """POST through Django's WSGI handler as a de-chunking server does: no CONTENT_LENGTH."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Bearer {secret}",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": terminated,
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"] = int(status.split()[0])

    chunks = WSGIHandler()(environ, start_response)
    return started["status"], json.loads(b"".join(chunks))


def asgi_post(path: str, chunks: list[bytes], secret: str):
    """POST through Django's ASGI handler as uvicorn delivers a chunked body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {secret}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
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

        await ASGIHandler()(scope, receive, send)

    asyncio.run(exchange())
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


def test_it_reads_a_chunked_submit_under_wsgi(alice, rex):
    body = json.dumps(task_body(agentId=rex.id)).encode()

    status, task = wsgi_post("/api/v1/tasks", body, alice.token)

    assert status == 201, task
    assert task["input"] == task_body()["input"]
    assert alice.balance().held == 5000


def test_it_reads_a_chunked_submit_under_asgi(alice, rex):
    body = json.dumps(task_body(agentId=rex.id)).encode()

    status, task = asgi_post("/api/v1/tasks", [body[:10], body[10:50], body[50:]], alice.token)

    assert status == 201, task
    assert task["maxBudget"] == 5000
    assert Task.objects.filter(pk=task["id"]).exists()


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_it_refuses_a_chunked_body_over_the_limit(alice, rex, settings, interface):
    settings.MAX_REQUEST_BYTES = 1000
    big = task_body(agentId=rex.id, input={"description": "x" * 2000})
    body = json.dumps(big).encode()

    if interface == "wsgi":
        status, error = wsgi_post("/api/v1/tasks", body, alice.token)
    else:
        status, error = asgi_post("/api/v1/tasks", [body[:600], body[600:]], alice.token)

    assert status == 413
    assert error["error"]["type"] == "request_too_large"
    assert not Task.objects.exists()
    assert alice.balance().held == 0


def test_it_leaves_a_body_alone_where_reading_past_it_is_unsafe(alice, rex):
    # A WSGI server that does not de-chunk gives no end to read to: the body reads as empty,
    # and validation says what is missing instead of the request hanging.
    body = json.dumps(task_body(agentId=rex.id)).encode()

    status, error = wsgi_post("/api/v1/tasks", body, alice.token, terminated=False)

    assert status == 400
    assert error["error"]["type"] == "validation_error"
    assert alice.balance().held == 0
