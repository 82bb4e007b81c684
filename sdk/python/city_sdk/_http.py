"""Requests with safe retries: every POST carries an ``Idempotency-Key`` that its retries reuse,
so the server replays the first answer instead of acting twice."""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

import httpx

from city_sdk._version import __version__
from city_sdk.errors import (
    APIConnectionError,
    APIError,
    CityError,
    error_from_response,
    retry_after_seconds,
)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
# A longer wait than this is the server asking us to go away; the caller should decide.
RETRY_AFTER_MAX_SECONDS = 60.0


def retryable(status: int, error: CityError) -> bool:
    """5xx and 429 may succeed later. So may a 409 for a key whose first request is still in
    flight (a retry after a timeout): the retry gets the first request's answer once it ends."""
    if status == 429 or status >= 500:
        return True
    return status == 409 and error.code == "idempotency_key_in_use"


class Transport:
    def __init__(
        self,
        *,
        secret: str,
        base_url: str,
        timeout: float,
        max_retries: int,
        http_client: httpx.Client | None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.client = http_client or httpx.Client(timeout=timeout)
        self._owns_client = http_client is None
        self.headers = {
            "Authorization": f"Bearer {secret}",
            "User-Agent": f"city-sdk-python/{__version__}",
        }
        self.sleep = time.sleep  # tests replace it to see the waits

    def url(self, path: str) -> str:
        return self.base_url + path

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_MAX_SECONDS)
        delay = min(BACKOFF_BASE_SECONDS * 2**attempt, BACKOFF_MAX_SECONDS)
        return delay * random.uniform(0.75, 1.0)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        params: dict | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The JSON of a 2xx answer; else the error's exception, after retrying what may pass."""
        headers = {**self.headers, "Accept": "application/json"}
        content = None
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
            headers["Content-Type"] = "application/json"
            content = json.dumps(body if body is not None else {})
        params = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self.client.request(
                    method, self.url(path), content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if last:
                    raise APIConnectionError(f"{method} {path} failed: {exc!r}") from exc
                self.sleep(self.backoff(attempt))
                continue
            if response.is_success:
                try:
                    return response.json()
                except ValueError:
                    raise APIError(
                        f"{method} {path}: the answer is not JSON",
                        status=response.status_code,
                        body=response.text,
                    ) from None
            error = error_from_response(response)
            if last or not retryable(response.status_code, error):
                raise error
            self.sleep(self.backoff(attempt, retry_after_seconds(response)))
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
