import os

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from city.request_threads import RequestThreads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain and the view run in one hop to the
    request's thread, as under WSGI.

    Django's own builds an async chain when it serves ASGI: each middleware that can run async
    does, and then hands every process_request/process_response of Django's middleware, and
    City's sync-only ones, back and forth between the event loop and the request's thread — a
    dozen thread hops for one small request, most of its cost under load. City's views are all
    synchronous (the streams' too: they return an async iterator that the handler then runs on
    the loop), so nothing is gained by the loop in between: the whole chain runs in the thread.
    """

    def __init__(self):
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


django.setup(set_prefix=False)
# Requests run on REQUEST_THREADS long-lived threads per process (city/request_threads.py).
application = RequestThreads(SyncChainASGIHandler(), size=settings.REQUEST_THREADS)
