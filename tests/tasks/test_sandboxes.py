"""Sandbox providers: the local folder, and E2B's HTTP API against a fake E2B on loopback."""

from __future__ import annotations

import json
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from tasks import jobs
from tasks.models import Sandbox, Task
from tasks.sandboxes import LocalProvider
from tests.actions import fail, hand_in_and_get
from tests.factories import error_of, task_body

E2B_KEY = "e2b_test_key_0123456789"


def a_task(input: dict) -> SimpleNamespace:
    return SimpleNamespace(pk="t1", input=input)


# LocalProvider


def test_it_creates_a_private_folder_holding_the_input(settings):
    task_input = {"description": "Review", "code": "x = 1\n", "repo": "github.com/a/b"}
    path = Path(LocalProvider().create(sandbox_id="sbx_one", task=a_task(task_input)))
    assert path == Path(settings.SANDBOX_ROOT) / "sbx_one"
    assert path.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert json.loads((path / "input.json").read_text()) == task_input


def test_it_writes_the_input_files_under_files(settings):
    task_input = {
        "description": "Review",
        "files": [
            {"name": "main.py", "content": "print('hi')\n"},
            {"name": "pkg/util.py", "content": "def f():\n    pass\n"},
            {"name": "empty.txt", "content": ""},
        ],
    }
    path = Path(LocalProvider().create(sandbox_id="sbx_files", task=a_task(task_input)))
    files = path / "files"
    assert (files / "main.py").read_text() == "print('hi')\n"
    assert (files / "pkg" / "util.py").read_text() == "def f():\n    pass\n"
    assert (files / "empty.txt").read_text() == ""
    assert json.loads((path / "input.json").read_text()) == task_input


@pytest.mark.parametrize(
    "name", ["../x", "../../x", "/etc/x", "a/../../x", "pkg/../../x", "", ".", "./"]
)
def test_it_ignores_file_names_that_would_leave_the_sandbox(settings, tmp_path, name):
    task_input = {
        "description": "Review",
        "files": [{"name": name, "content": "pwned"}, {"name": "ok.py", "content": "ok"}],
    }
    path = Path(LocalProvider().create(sandbox_id="sbx_evil", task=a_task(task_input)))
    assert (path / "files" / "ok.py").read_text() == "ok"
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["sandboxes/sbx_evil/files/ok.py", "sandboxes/sbx_evil/input.json"]


def test_it_removes_the_folder_on_destroy(settings):
    provider = LocalProvider()
    task_input = {"description": "Review", "files": [{"name": "a/b.py", "content": "x"}]}
    path = provider.create(sandbox_id="sbx_gone", task=a_task(task_input))
    provider.destroy(external_id=path)
    assert not Path(path).exists()
    provider.destroy(external_id=path)  # already gone: no error


def test_it_never_removes_a_folder_outside_the_sandbox_root(settings, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("keep me")
    LocalProvider().destroy(external_id=str(outside))
    assert (outside / "data").read_text() == "keep me"


def test_it_provisions_the_tasks_input_over_the_api(alice, rex, settings):
    files = [{"name": "app.py", "content": "import os\n"}, {"name": "../escape", "content": "x"}]
    body = task_body(agentId=rex.id, input={"description": "Review", "files": files})
    tid = alice.api.post("/api/v1/tasks", body).json()["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    path = Path(settings.SANDBOX_ROOT) / sid
    assert Sandbox.objects.get(pk=sid).external_id == str(path)
    assert json.loads((path / "input.json").read_text()) == body["input"]
    assert (path / "files" / "app.py").read_text() == "import os\n"
    assert not (path / "escape").exists()
    assert not (Path(settings.SANDBOX_ROOT) / "escape").exists()


@pytest.mark.parametrize(
    "names", [["pkg", "pkg/mod.py"], ["x" * 300]], ids=["file-then-folder", "long-name"]
)
def test_it_provisions_whatever_file_names_the_caller_sent(alice, rex, settings, names):
    files = [{"name": name, "content": "x"} for name in names]
    body = task_body(agentId=rex.id, input={"description": "Review", "files": files})
    tid = alice.api.post("/api/v1/tasks", body).json()["id"]
    response = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    root = Path(settings.SANDBOX_ROOT)
    live = list(Sandbox.objects.filter(task_id=tid).values_list("pk", flat=True))
    # No folder without its sandbox row, whatever happened.
    assert sorted(p.name for p in root.iterdir()) == sorted(live)
    assert response.status_code == 201


# E2BProvider against a fake E2B


class FakeE2B:
    """Speaks E2B's sandbox API: POST /sandboxes and DELETE /sandboxes/{id}, keyed by X-API-Key."""

    def __init__(self, key: str):
        self.key = key
        self.calls: list[dict] = []
        self.live: set[str] = set()
        self.fail_deletes = 0
        self.counter = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict | None = None):
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if raw:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                call = {
                    "method": self.command,
                    "path": self.path,
                    "key": self.headers.get("X-API-Key"),
                    "body": json.loads(raw) if raw else None,
                }
                fake.calls.append(call)
                return call

            def do_POST(self):
                call = self._record()
                if call["key"] != fake.key:
                    return self._answer(401, {"code": 401, "message": "Invalid API key"})
                if self.path != "/sandboxes":
                    return self._answer(404, {"code": 404, "message": "not found"})
                fake.counter += 1
                sandbox = f"e2bsbx{fake.counter:04d}"
                fake.live.add(sandbox)
                return self._answer(
                    201,
                    {"sandboxID": sandbox, "clientID": "c0ffee", "templateID": "base"},
                )

            def do_DELETE(self):
                call = self._record()
                if call["key"] != fake.key:
                    return self._answer(401, {"code": 401, "message": "Invalid API key"})
                if fake.fail_deletes:
                    fake.fail_deletes -= 1
                    return self._answer(502, {"code": 502, "message": "bad gateway"})
                sandbox = self.path.removeprefix("/sandboxes/")
                if sandbox not in fake.live:
                    return self._answer(404, {"code": 404, "message": "sandbox not found"})
                fake.live.discard(sandbox)
                return self._answer(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def calls_of(self, method: str) -> list[dict]:
        return [c for c in self.calls if c["method"] == method]


@pytest.fixture
def e2b(settings):
    fake = FakeE2B(E2B_KEY)
    fake.thread.start()
    settings.SANDBOX_PROVIDER = "e2b"
    settings.E2B_API_URL = fake.url
    settings.E2B_API_KEY = E2B_KEY
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_it_provisions_and_destroys_an_e2b_sandbox(e2b, submitted, rex):
    tid = submitted["id"]
    response = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert response.status_code == 201
    sid = response.json()["sandboxId"]
    assert sid.startswith("sbx_")

    [created] = e2b.calls_of("POST")
    assert (created["path"], created["key"]) == ("/sandboxes", E2B_KEY)
    assert created["body"]["templateID"] == "base"
    assert created["body"]["metadata"] == {"citySandboxId": sid, "taskId": tid}
    sandbox = Sandbox.objects.get(pk=sid)
    assert (sandbox.provider, sandbox.external_id, sandbox.status) == ("e2b", "e2bsbx0001", "live")

    response = rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    assert response.status_code == 200
    assert response.json() == {"destroyed": True}
    [deleted] = e2b.calls_of("DELETE")
    assert (deleted["path"], deleted["key"]) == ("/sandboxes/e2bsbx0001", E2B_KEY)
    assert e2b.live == set()
    assert Sandbox.objects.get(pk=sid).status == "destroyed"

    # Already destroyed: City answers without asking E2B again.
    assert rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}").json() == {"destroyed": False}
    assert len(e2b.calls_of("DELETE")) == 1


def test_it_starts_a_task_in_an_e2b_sandbox(e2b, submitted, rex):
    tid = submitted["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    response = rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})
    assert response.status_code == 200
    assert response.json()["sandboxId"] == sid


def test_it_destroys_the_e2b_sandbox_when_the_task_fails(e2b, submitted, rex):
    tid = submitted["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    assert rex.api.post(f"/api/v1/tasks/{tid}/fail", {"reason": "timeout"}).status_code == 200
    assert [c["path"] for c in e2b.calls_of("DELETE")] == ["/sandboxes/e2bsbx0001"]
    assert e2b.live == set()
    assert Sandbox.objects.get(pk=sid).status == "destroyed"


def test_it_destroys_a_sandbox_with_the_provider_that_made_it(e2b, submitted, rex, settings):
    tid = submitted["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    settings.SANDBOX_PROVIDER = "local"  # switched after the sandbox was made
    assert rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}").json() == {"destroyed": True}
    assert [c["path"] for c in e2b.calls_of("DELETE")] == ["/sandboxes/e2bsbx0001"]


def test_it_counts_a_sandbox_e2b_no_longer_knows_as_destroyed(e2b, submitted, rex):
    tid = submitted["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    e2b.live.clear()  # E2B reaped it on its own
    response = rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    assert response.status_code == 200
    assert response.json() == {"destroyed": True}
    assert Sandbox.objects.get(pk=sid).status == "destroyed"


def test_it_keeps_the_sandbox_live_when_e2b_fails_to_destroy_it(e2b, submitted, rex):
    tid = submitted["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    e2b.fail_deletes = 1
    response = rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    assert response.status_code == 500
    assert error_of(response)["type"] == "server_error"
    assert Sandbox.objects.get(pk=sid).status == "live"
    # A retry reaches E2B again and succeeds.
    assert rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}").json() == {"destroyed": True}
    assert e2b.live == set()


def _assert_provision_fails_cleanly(rex, tid: str) -> None:
    response = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert response.status_code == 500
    error = error_of(response)
    assert (error["type"], error["code"]) == ("server_error", "sandbox_provider_error")
    assert not Sandbox.objects.filter(task_id=tid).exists()
    assert Task.objects.get(pk=tid).status == "submitted"
    assert "sandbox_provision" not in [e.type for e in Task.objects.get(pk=tid).events.all()]


def test_it_answers_500_and_keeps_no_sandbox_when_e2b_refuses_the_key(
    e2b, submitted, rex, settings
):
    settings.E2B_API_KEY = "e2b_wrong_key"
    _assert_provision_fails_cleanly(rex, submitted["id"])
    [call] = e2b.calls
    assert call["key"] == "e2b_wrong_key"
    assert e2b.live == set()


def test_it_answers_500_and_keeps_no_sandbox_when_e2b_is_down(submitted, rex, settings):
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.SANDBOX_PROVIDER = "e2b"
    settings.E2B_API_URL = f"http://127.0.0.1:{port}"
    settings.E2B_API_KEY = E2B_KEY
    _assert_provision_fails_cleanly(rex, submitted["id"])


def test_it_answers_500_and_keeps_no_sandbox_without_an_e2b_key(e2b, submitted, rex, settings):
    settings.E2B_API_KEY = ""
    _assert_provision_fails_cleanly(rex, submitted["id"])
    assert e2b.calls == []


def test_it_provisions_once_e2b_is_back(e2b, submitted, rex, settings):
    tid = submitted["id"]
    settings.E2B_API_KEY = "e2b_wrong_key"
    assert rex.api.post(f"/api/v1/tasks/{tid}/sandbox").status_code == 500
    settings.E2B_API_KEY = E2B_KEY
    response = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert response.status_code == 201
    assert Sandbox.objects.filter(task_id=tid, status="live").count() == 1


def test_it_fails_a_task_even_when_e2b_cannot_destroy_its_sandbox(e2b, submitted, rex, alice):
    tid = submitted["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    e2b.fail_deletes = 10
    response = rex.api.post(f"/api/v1/tasks/{tid}/fail", {"reason": "execution_error"})
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert Sandbox.objects.get(pk=sid).status == "live"  # left for the sweep

    e2b.fail_deletes = 0
    jobs.sweep_timeouts()
    assert Sandbox.objects.get(pk=sid).status == "destroyed"
    assert e2b.live == set()


def test_a_job_that_settles_a_task_destroys_its_sandbox_itself(executing, rex, monkeypatch):
    """The quality check (a job) settles the task and cleans up right there: no cleanup job is
    queued for it. A change made by a request (a fail) queues the cleanup job instead."""
    queued = []
    monkeypatch.setattr(jobs.destroy_sandboxes, "delay", queued.append)

    task = hand_in_and_get(rex, executing["id"])  # eager here: the check runs as a job

    assert task["status"] == "completed"
    assert Sandbox.objects.get(pk=executing["sandboxId"]).status == "destroyed"
    assert queued == []


def test_a_request_that_ends_a_task_queues_its_sandbox_cleanup(executing, rex, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs.destroy_sandboxes, "delay", queued.append)

    assert fail(rex, executing["id"])["status"] == "failed"

    assert queued == [executing["id"]]
    assert Sandbox.objects.get(pk=executing["sandboxId"]).status == "live"  # the job's to do


def test_a_provision_the_constraint_refuses_is_409_and_leaves_nothing(
    executing, rex, settings, monkeypatch
):
    """Should a second live sandbox get past the check (the task's lock makes that a bug), the
    one-live-sandbox constraint refuses it: the whole change rolls back, the provider's new
    sandbox is destroyed again, and the answer is 409 as for any second provision."""
    from tasks import services

    monkeypatch.setattr(services._LIVE_SANDBOX, "first", lambda **_: None)
    before = list(Sandbox.objects.values_list("id", flat=True))
    folders = set(Path(settings.SANDBOX_ROOT).iterdir())

    response = rex.api.post(f"/api/v1/tasks/{executing['id']}/sandbox")

    assert response.status_code == 409
    assert error_of(response)["code"] == "sandbox_already_live"
    assert list(Sandbox.objects.values_list("id", flat=True)) == before
    assert set(Path(settings.SANDBOX_ROOT).iterdir()) == folders  # its folder removed again
    types = list(Task.objects.get(pk=executing["id"]).events.values_list("type", flat=True))
    assert types.count("sandbox_provision") == 1
    # and the task goes on in its first sandbox
    assert Sandbox.objects.get(pk=executing["sandboxId"]).status == "live"


def test_a_provision_that_fails_after_the_provider_made_the_sandbox_destroys_it(
    submitted, rex, settings, monkeypatch
):
    """Nothing in the database would lead the sweep to a sandbox whose change rolled back, so
    the provision destroys it itself before the error goes on."""
    from city.identity.principals import Principal
    from tasks import services

    def broken(*events):
        raise RuntimeError("the event store is down")

    monkeypatch.setattr(services.events, "record", broken)

    with pytest.raises(RuntimeError):
        services.sandbox_provision(principal=Principal(agent=rex.agent), task_id=submitted["id"])

    assert not Sandbox.objects.filter(task_id=submitted["id"]).exists()
    root = Path(settings.SANDBOX_ROOT)
    assert root.is_dir()  # the provider made the sandbox there...
    assert list(root.iterdir()) == []  # ...and it is gone again
