"""A body sent chunked (no Content-Length) is read like any other, under the same size limit,
through the WSGI interface as gunicorn speaks it and the ASGI interface as uvicorn does."""

from __future__ import annotations

import io
import json

import pytest
from django.core.handlers.wsgi import WSGIHandler

from tasks.models import Task
from tests.asgi import asgi_request
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
    status, _, body = asgi_request(
        "POST",
        path,
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {secret}",
            "transfer-encoding": "chunked",
        },
        chunks=chunks,
    )
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
