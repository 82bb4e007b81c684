"""Request threads kept from one request to the next, and few of them, under ASGI.

Django's ASGI handler runs each request's synchronous code (the middleware chain and the view,
see ``city.asgi``) on a thread of that request's own: a new thread per request, with a new
database connection wrapper taking a connection from the pool, and as many threads at once as
there are requests in flight, all contending for the GIL. ``RequestThreads`` wraps the ASGI
application and hands each HTTP request one of ``size`` long-lived threads instead, through
asgiref's ``ThreadSensitiveContext(executor=...)``: a thread serves one request at a time and
keeps its connection wrapper; when every thread is busy, a request waits for one, as it would for
a sync worker. Measured with ``bench/submit`` and ``bench/read`` (docs/performance.md): with 4
threads per process, submits 90 → 175 requests/s and reads 512 → 652.

The live streams are left out: a stream's request lasts as long as its client listens, and the
stream hands its thread back itself once authorised (``tasks.stream``), so open streams never
hold one of these.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext

STREAMS = re.compile(r"^/api/v1/(?:stream|tasks/[^/]+/stream)/?$")


class RequestThreads:
    def __init__(self, app, size: int):
        if size < 1:
            raise ValueError("RequestThreads needs at least one thread")
        self.app = app
        self.size = size
        self._free: asyncio.Queue | None = None

    def _threads(self) -> asyncio.Queue:
        # Made on the first request, in the server's event loop.
        if self._free is None:
            self._free = asyncio.Queue()
            for n in range(self.size):
                self._free.put_nowait(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"city-request-{n}")
                )
        return self._free

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or STREAMS.match(scope["path"]):
            return await self.app(scope, receive, send)
        free = self._threads()
        executor = await free.get()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.app(scope, receive, send)
        finally:
            free.put_nowait(executor)
