"""Sandbox providers: where an agent runs a task's work.

``local`` makes a private folder per sandbox (mode 0700) under SANDBOX_ROOT holding the task's
input; ``e2b`` speaks E2B's HTTP API (``POST /sandboxes``, ``DELETE /sandboxes/{id}``).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from django.conf import settings


class SandboxError(Exception):
    pass


class LocalProvider:
    name = "local"

    def root(self) -> Path:
        return Path(settings.SANDBOX_ROOT)

    def create(self, *, sandbox_id: str, task) -> str:
        root = self.root()
        root.mkdir(parents=True, exist_ok=True)
        path = root / sandbox_id
        path.mkdir(mode=0o700)
        try:
            os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
            (path / "input.json").write_text(json.dumps(task.input, indent=2))
            for item in task.input.get("files") or []:
                self._write_file(path / "files", item)
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise SandboxError(f"could not prepare the sandbox folder: {exc}") from exc
        return str(path)

    def _write_file(self, files: Path, item: dict) -> None:
        # Only a plain relative name may land in the sandbox: no "..", no absolute paths.
        name = PurePosixPath(str(item.get("name", "")))
        if name.is_absolute() or ".." in name.parts or not name.parts:
            return
        target = files / Path(*name.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(str(item.get("content", "")))
        except OSError:
            # A name the file system refuses (too long, or a folder where a file is): the
            # agent still has the file in input.json.
            return

    def destroy(self, *, external_id: str) -> None:
        path = Path(external_id)
        if path.parent == self.root():
            shutil.rmtree(path, ignore_errors=True)


class E2BProvider:
    name = "e2b"

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        if not settings.E2B_API_KEY:
            raise SandboxError("E2B_API_KEY is not set")
        request = urllib.request.Request(
            settings.E2B_API_URL.rstrip("/") + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-API-Key": settings.E2B_API_KEY, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if method == "DELETE" and exc.code == 404:
                return {}
            raise SandboxError(f"E2B answered {exc.code} to {method} {path}") from exc
        except urllib.error.URLError as exc:
            raise SandboxError(f"E2B is unreachable: {exc.reason}") from exc
        return json.loads(raw) if raw else {}

    def create(self, *, sandbox_id: str, task) -> str:
        body = self._call(
            "POST",
            "/sandboxes",
            {"templateID": "base", "metadata": {"citySandboxId": sandbox_id, "taskId": task.pk}},
        )
        return body["sandboxID"]

    def destroy(self, *, external_id: str) -> None:
        self._call("DELETE", f"/sandboxes/{external_id}")


PROVIDERS = {"local": LocalProvider, "e2b": E2BProvider}


def provider_for(name: str):
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise SandboxError(f"unknown sandbox provider {name!r}") from None


def provider():
    return provider_for(settings.SANDBOX_PROVIDER)
