"""The processes that tests run beside themselves, sharing the test database over PostgreSQL:
Celery workers on Redis and the ASGI server (uvicorn), each a real subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from city.celery import app as celery_app
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, and the job under way is never acknowledged."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _start_worker(queue: str, pool: str, env: dict[str, str]) -> Worker:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "city",
            "worker",
            "-P",
            pool,
            "-c",
            "1",
            "-l",
            "info",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "city.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_QUEUE": queue,
            "STREAM_REDIS_CHANNEL": settings.STREAM_REDIS_CHANNEL,
            "SANDBOX_ROOT": str(settings.SANDBOX_ROOT),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "ready." in line:
            break
    else:
        process.kill()
        pytest.fail("the worker did not start:\n" + "".join(lines))
    if process.poll() is not None:
        pytest.fail("the worker exited:\n" + "".join(lines))
    # Keep reading its output, or a full pipe would block the worker mid-job.
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    return Worker(process)


def needs_redis(what: str) -> None:
    if not settings.REDIS_URL:
        if IN_CI:
            pytest.fail(f"CI must run {what} with REDIS_URL set")
        pytest.skip("needs Redis: set REDIS_URL=redis://...")


@pytest.fixture
def celery_queue(postgres, settings):
    """A Celery queue of this test's own on Redis, emptied afterwards, and a stream channel of its
    own: the workers and servers it starts (and this process) use them, so no job or stream
    message strays to another test's processes (or a developer's)."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    settings.STREAM_REDIS_CHANNEL = f"{queue}:stream"
    try:
        yield queue
    finally:
        if settings.REDIS_URL:
            _forget_queue(queue)


@pytest.fixture
def start_worker(celery_queue):
    """Starts worker processes on the test's queue, sharing the test database over PostgreSQL;
    ``start_worker(pool=..., **env)`` adds settings of its own to one of them."""
    needs_redis("the worker tests")
    queue = celery_queue
    workers: list[Worker] = []

    def start_one(pool: str = "solo", **env: str) -> Worker:
        worker = _start_worker(queue, pool, env)
        workers.append(worker)
        return worker

    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager, conf.task_default_queue = False, queue
    try:
        yield start_one
    finally:
        conf.task_always_eager, conf.task_default_queue = saved
        for worker in workers:
            worker.stop()
        connection.close()


def _forget_queue(queue: str) -> None:
    """Drop what Redis keeps for a test's queue once its workers are gone, the job a killed worker
    never acknowledged included: an hour later any worker would put it back on the dead queue."""
    broker = redis.Redis.from_url(settings.REDIS_URL)
    for tag, raw in broker.hscan_iter("unacked"):
        _message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)
    broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@pytest.fixture
def worker(start_worker):
    """One worker, with the settings the test process has."""
    return start_worker()


def wait_for(predicate, what: str, seconds: float = 30):
    """Poll with a deadline (never a fixed sleep); what the predicate returned."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """An ASGI server process (uvicorn, as the Procfile runs it) on the test database."""

    process: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 20) -> float:
        """SIGTERM, as a process manager stops it; how many seconds it took to exit."""
        if self.process.poll() is not None:
            return 0.0
        began = time.monotonic()
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        return time.monotonic() - began


def _start_server(env: dict[str, str]) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "city.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "2",
            "--lifespan",
            "off",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "city.settings",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": database_url(),
            "SANDBOX_ROOT": str(settings.SANDBOX_ROOT),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the ASGI server exited:\n" + "".join(server.output))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail("the ASGI server did not start:\n" + "".join(server.output))


@pytest.fixture
def start_server(celery_queue, settings):
    """Starts ASGI server processes on the test database; ``start_server(redis=True, **env)``.

    With ``redis=True`` the server takes REDIS_URL (Celery on Redis, the stream's messages
    through Redis, on the test's queue and channel); without it, the embedded default: eager
    Celery, the stream in process."""
    servers: list[Server] = []

    def start_one(*, redis: bool = False, **env: str) -> Server:
        env = {
            "STREAM_REDIS_CHANNEL": settings.STREAM_REDIS_CHANNEL,
            "CELERY_QUEUE": celery_queue,
            **env,
        }
        if redis:
            needs_redis("the stream tests")
        env.setdefault("REDIS_URL", settings.REDIS_URL if redis else "")
        server = _start_server(env)
        servers.append(server)
        return server

    try:
        yield start_one
    finally:
        for server in servers:
            server.stop()
        connection.close()
    for server in servers:  # a server that failed a request says so, even if the test passed
        printed = "".join(server.output)
        assert "Traceback" not in printed, f"the server logged an error:\n{printed}"


class HttpApi:
    """``ApiClient``'s interface over real HTTP to a server process: what ``tests.actions``
    does, done to the server (so that its transitions are recorded, and published, there)."""

    def __init__(self, base_url: str, secret: str | None):
        self.secret = secret
        self.client = httpx.Client(base_url=base_url, timeout=30)
        if secret is not None:
            self.client.headers["Authorization"] = f"Bearer {secret}"

    def get(self, path: str, params: dict | None = None, headers: dict | None = None):
        return self.client.get(path, params=params, headers=headers)

    def post(self, path: str, body=None, headers: dict | None = None, raw: str | None = None):
        content = raw if raw is not None else json.dumps(body if body is not None else {})
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.client.post(path, content=content, headers=headers)

    def delete(self, path: str, headers: dict | None = None):
        return self.client.delete(path, headers=headers)


class Remote:
    """A person or bot of ``tests.factories`` whose ``api`` speaks to ``server`` over HTTP."""

    def __init__(self, who, server: Server):
        self._who = who
        self.api = HttpApi(server.url, who.api.secret)

    def __getattr__(self, name):
        return getattr(self._who, name)


@pytest.fixture
def live_city(start_server, request):
    """A server as production runs it when Redis is at hand (CI): Celery on Redis with a real
    worker beside it, the stream through Redis; without Redis, the embedded default."""
    if not settings.REDIS_URL:
        return start_server()
    request.getfixturevalue("start_worker")()
    return start_server(redis=True)
