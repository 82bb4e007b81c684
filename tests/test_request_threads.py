"""Under ASGI, requests run on a few long-lived threads (city.request_threads): the same thread
from one request to the next, at most ``size`` requests at once, and the streams left out."""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import SyncToAsync, sync_to_async

from city.request_threads import RequestThreads


def scope(path: str = "/api/v1/tasks/t_1") -> dict:
    return {"type": "http", "path": path}


class Recorder:
    """An ASGI app that runs a thread-sensitive call, as Django's handler does, and records the
    thread it ran on; ``gate`` holds it until the test opens it."""

    def __init__(self):
        self.threads: list[int] = []
        self.pooled: list[bool] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.most = 0

    async def __call__(self, scope, receive, send):
        try:
            SyncToAsync.thread_sensitive_context.get()
            self.pooled.append(True)
        except LookupError:
            self.pooled.append(False)
        self.running += 1
        self.most = max(self.most, self.running)
        await self.gate.wait()
        name = await sync_to_async(lambda: threading.current_thread().name, thread_sensitive=True)()
        self.threads.append(name)
        self.running -= 1


async def nothing():
    return {"type": "http.disconnect"}


async def ignore(message):
    pass


def test_one_thread_serves_request_after_request():
    app = Recorder()
    threads = RequestThreads(app, size=1)

    async def three():
        for _ in range(3):
            await threads(scope(), nothing, ignore)

    asyncio.run(three())

    assert app.threads == ["city-request-0_0"] * 3  # one of the pool's, kept
    assert app.pooled == [True] * 3


def test_at_most_size_requests_run_at_once():
    app = Recorder()
    threads = RequestThreads(app, size=2)

    async def five():
        app.gate.clear()
        requests = [asyncio.create_task(threads(scope(), nothing, ignore)) for _ in range(5)]
        await asyncio.sleep(0)  # every request asks for a thread; two get one
        for _ in range(5):
            await asyncio.sleep(0)
        waiting = app.running
        app.gate.set()
        await asyncio.gather(*requests)
        return waiting

    assert asyncio.run(five()) == 2
    assert app.most == 2 and len(app.threads) == 5
    assert set(app.threads) == {"city-request-0_0", "city-request-1_0"}


def test_streams_keep_their_own_context():
    app = Recorder()
    threads = RequestThreads(app, size=1)

    async def both():
        await threads(scope("/api/v1/stream"), nothing, ignore)
        await threads(scope("/api/v1/tasks/t_1/stream"), nothing, ignore)
        await threads(scope("/api/v1/tasks/t_1"), nothing, ignore)

    asyncio.run(both())

    assert app.pooled == [False, False, True]
