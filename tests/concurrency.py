"""Running calls at the same moment in real threads, for race tests on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_together(calls: list[Callable[[], object]]) -> list:
    """Run each call in its own thread, released at once by a barrier; their results, in order.

    Each thread has its own database connection and closes it when done, so the pool gets it
    back. An exception in a thread is raised again here, and a thread that never finishes fails
    the test rather than leaving its result silently missing.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def work(i: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = call()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a call never finished"
    if errors:
        raise errors[0]
    return results
