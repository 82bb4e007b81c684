"""The Python SDK (sdk/python, ``city_sdk``) against a live City server process (uvicorn on the
test database): every call, every exception by its trigger, a submit retried after its answer
was lost, a stream that resumes across a cut connection, and the demo agent.

A few tests at the end use ``httpx.MockTransport`` instead, for what a live server cannot be
made to do on cue (a 503, a stream cut between the records of one group)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from city_sdk import (
    APIConnectionError,
    AuthenticationError,
    City,
    ConflictError,
    Event,
    ForbiddenError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    ValidationError,
)

from tests.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]

REVIEWED_CODE = (
    "import json\n"
    "\n"
    "def load(path):\n"
    "    # TODO: check that the path exists\n"
    "    try:\n"
    "        return json.load(open(path))\n"
    "    except:\n"
    "        return None\n"
)
GOOD_REVIEW = {
    "findings": [{"line": 1, "severity": "low", "message": "unused name x"}],
    "summary": "One finding: x is assigned but never used.",
}


def snippet(**extra) -> dict:
    return {"description": "Review this snippet", "code": "x = 1\n", **extra}


@pytest.fixture
def server(live_city):
    return live_city


@pytest.fixture
def owner(alice, server):
    with City(owner_token=alice.token, base_url=server.url) as city:
        yield city


@pytest.fixture
def agent(rex, server):
    with City(api_key=rex.key, base_url=server.url) as city:
        yield city


def hire_rex(owner: City, rex, **fields):
    fields = {"task_type": "code_review", "max_budget": 5000, "input": snippet(), **fields}
    return owner.tasks.submit(agent_id=rex.id, **fields)


def work_to_completed(owner: City, agent: City, task_id: str, output=GOOD_REVIEW):
    """The agent's whole part, through the SDK; the task once the quality check settled it."""
    sandbox = agent.tasks.provision_sandbox(task_id)
    assert agent.tasks.mark_executing(task_id, sandbox).status == "executing"
    handed_in = agent.tasks.complete(task_id, output=output, execution_time_ms=1200)
    assert handed_in.status in ("quality_check", "completed")
    return wait_for(
        lambda: (task := owner.tasks.get(task_id)).status == "completed" and task,
        "the quality check to settle the task",
    )


class Follower:
    """Iterates an SDK stream on a thread of its own, so that the test waits for each event with
    a deadline, never a sleep."""

    def __init__(self, stream):
        self.stream = stream
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.stream:
                self.events.put(event)
        except Exception as exc:
            self.events.put(exc)

    def next(self, timeout: float = 20) -> Event:
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s") from None
        if isinstance(item, BaseException):
            raise AssertionError(f"the stream failed: {item!r}")
        return item

    def until(self, predicate, timeout: float = 30) -> list[Event]:
        seen = [self.next(timeout)]
        while not predicate(seen[-1]):
            seen.append(self.next(timeout))
        return seen

    def close(self) -> None:
        self.stream.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "close() did not end the iteration"


def follow_task(city: City, task_id: str) -> Follower:
    """The task's stream from its last recorded event on, whenever the connection opens."""
    last = city.tasks.events(task_id)[-1].id
    return Follower(city.tasks.stream(task_id, last_event_id=str(last)))


def described(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.event, e.data.get("type") or e.data.get("feedback")) for e in events]


# Every call against the server


def test_an_owner_hires_and_its_agent_works_the_task_to_completed(owner, agent, rex):
    task = hire_rex(owner, rex)
    assert (task.status, task.agent_id, task.credits_held) == ("submitted", rex.id, 5000)
    assert task.task_type == "code_review" and task.input == snippet()
    assert task.created_at.tzinfo is not None and task.raw["id"] == task.id

    assert [t.id for t in agent.tasks.list_submitted()] == [task.id]
    assert owner.credits.get().held == 5000
    done = work_to_completed(owner, agent, task.id)

    assert (done.credits_charged, done.credits_held, done.execution_time_ms) == (2500, 0, 1200)
    assert done.output == GOOD_REVIEW and done.quality_score >= 60 and done.quality_reasons
    assert done.sandbox_id.startswith("sbx_") and done.completed_at is not None
    assert agent.tasks.list_submitted() == []
    assert [e.type for e in owner.tasks.events(task.id)] == [
        "submit",
        "assign",
        "sandbox_provision",
        "start",
        "complete",
        "pass",
    ]
    page = owner.tasks.list(page=1, page_size=10, status="completed")
    assert [t.id for t in page.data] == [task.id]
    assert (page.pagination.total, page.pagination.total_pages, page.pagination.page_size) == (
        1,
        1,
        10,
    )
    assert agent.tasks.list(role="assignee").data[0].id == task.id
    assert owner.tasks.list(status="failed").data == []
    credits = owner.credits.get()
    assert (credits.available, credits.held, credits.total) == (97_500, 0, 97_500)
    assert [(e.kind, e.amount) for e in owner.credits.entries(page_size=3).data] == [
        ("charge", -2500),
        ("release", 5000),
        ("hold", -5000),
    ]
    assert agent.credits.get().available == 2250  # the price less the 10% fee


def test_an_owner_gives_feedback_then_files_reads_and_withdraws_a_dispute(owner, agent, rex):
    liked = hire_rex(owner, rex)
    work_to_completed(owner, agent, liked.id)
    disputed = hire_rex(owner, rex)
    work_to_completed(owner, agent, disputed.id)

    assert owner.tasks.give_feedback(liked.id, "up") is False
    assert owner.tasks.get(liked.id).feedback == "up"
    dispute = owner.tasks.dispute(
        disputed.id, reason="incomplete_delivery", description="Only one line was reviewed."
    )
    assert (dispute.task_id, dispute.status, dispute.reason) == (
        disputed.id,
        "filed",
        "incomplete_delivery",
    )
    assert dispute.id.startswith("dsp_") and dispute.due_by > dispute.created_at
    assert [d.id for d in owner.disputes.list(status="filed").data] == [dispute.id]
    assert owner.disputes.get(dispute.id).description == "Only one line was reviewed."
    assert owner.disputes.withdraw(dispute.id).status == "withdrawn"
    assert owner.disputes.list(status="filed").pagination.total == 0


def test_a_cancel_and_an_agents_fail_each_give_the_whole_hold_back(owner, agent, rex):
    cancelled = owner.tasks.cancel(hire_rex(owner, rex).id)
    failing = hire_rex(owner, rex)
    sandbox = agent.tasks.provision_sandbox(failing.id)
    agent.tasks.mark_executing(failing.id, sandbox)
    failed = agent.tasks.fail(failing.id, reason="execution_error", error_message="repo is gone")

    assert (cancelled.status, cancelled.failure_reason, cancelled.credits_held) == (
        "failed",
        "cancelled",
        0,
    )
    assert (failed.status, failed.failure_reason, failed.error_message) == (
        "failed",
        "execution_error",
        "repo is gone",
    )
    assert owner.credits.get().available == 100_000
    # The platform destroys a failed task's sandbox by a job after commit: whichever of it and
    # this call comes first destroys it, and from then on it is gone.
    agent.tasks.destroy_sandbox(failing.id, sandbox)
    assert agent.tasks.destroy_sandbox(failing.id, sandbox) is False


def test_a_live_sandbox_is_destroyed_once(owner, agent, rex):
    task = hire_rex(owner, rex)
    sandbox = agent.tasks.provision_sandbox(task.id)

    assert agent.tasks.destroy_sandbox(task.id, sandbox) is True
    assert agent.tasks.destroy_sandbox(task.id, sandbox) is False
    assert agent.tasks.provision_sandbox(task.id) != sandbox  # a new one may be provisioned


def test_an_agent_key_submits_a_sub_hire_paid_from_its_earnings(owner, agent, rex, zed):
    for _ in range(2):
        work_to_completed(owner, agent, hire_rex(owner, rex).id)
    assert agent.credits.get().available == 4500

    offers = {a.id: a.task_types for a in owner.agents.list(task_type="code_review").data}
    sub = agent.tasks.submit(
        task_type="code_review", max_budget=3000, agent_id=zed.id, input=snippet()
    )

    assert {o.task_type: o.price for o in offers[zed.id]} == {"code_review": 3000}
    assert {o.task_type: o.price for o in offers[rex.id]} == {"code_review": 2500, "bug_fix": 4000}
    assert (sub.status, sub.agent_id, sub.parent_task_id) == ("submitted", zed.id, None)
    credits = agent.credits.get()
    assert (credits.available, credits.held) == (1500, 3000)
    assert [t.id for t in agent.tasks.list(role="caller").data] == [sub.id]


def test_stream_url_names_the_stream_and_its_headers_without_a_request(alice):
    city = City(owner_token=alice.token, base_url="http://city.invalid:1/")  # never reached

    url, headers = city.tasks.stream_url("abc")

    assert url == "http://city.invalid:1/api/v1/tasks/abc/stream"
    assert headers == {"Authorization": f"Bearer {alice.token}", "Accept": "text/event-stream"}


def test_the_client_takes_exactly_one_secret_from_arguments_or_the_environment(monkeypatch):
    monkeypatch.delenv("CITY_OWNER_TOKEN", raising=False)
    monkeypatch.delenv("CITY_API_KEY", raising=False)
    monkeypatch.setenv("CITY_BASE_URL", "http://city.example:9000")
    for wrong in ({}, {"owner_token": "own_a", "api_key": "agk_b"}, {"owner_token": "agk_b"}):
        with pytest.raises(ValueError):
            City(**wrong)
    monkeypatch.setenv("CITY_API_KEY", "agk_from_env")

    city = City()

    assert (city.kind, city.base_url) == ("agent", "http://city.example:9000")
    assert city.tasks.stream_url("t").headers["Authorization"] == "Bearer agk_from_env"


# Each exception, by the trigger the contract gives it


def test_each_refusal_raises_the_exception_of_its_status(owner, agent, rex, server):
    bad_token = City(owner_token="own_" + "x" * 43, base_url=server.url)
    with pytest.raises(AuthenticationError) as unauthenticated:
        bad_token.tasks.list()
    with pytest.raises(ValidationError) as invalid:
        owner.tasks.submit(task_type="code_review", max_budget=0, input=snippet())
    with pytest.raises(PaymentRequiredError) as too_dear:
        hire_rex(owner, rex, max_budget=100_001)
    with pytest.raises(ForbiddenError) as wrong_kind:
        owner.tasks.list_submitted()
    with pytest.raises(NotFoundError) as unknown:
        owner.tasks.get("no-such-task")
    waiting = hire_rex(owner, rex)
    with pytest.raises(ConflictError) as wrong_state:
        agent.tasks.complete(waiting.id, output=GOOD_REVIEW, execution_time_ms=1200)

    assert (unauthenticated.value.status, unauthenticated.value.type) == (
        401,
        "authentication_error",
    )
    assert (invalid.value.status, invalid.value.code, invalid.value.param) == (
        400,
        "max_budget_too_small",
        "maxBudget",
    )
    assert (too_dear.value.status, too_dear.value.type) == (402, "payment_required")
    assert (wrong_kind.value.status, wrong_kind.value.type) == (403, "forbidden")
    assert (unknown.value.status, unknown.value.type) == (404, "not_found")
    assert (wrong_state.value.status, wrong_state.value.code) == (409, "task_submitted")
    assert wrong_state.value.body == {"error": {**wrong_state.value.body["error"]}}
    assert wrong_state.value.message
    credits = owner.credits.get()  # only the task in submitted holds anything
    assert (credits.available, credits.held) == (95_000, 5000)


def test_a_rate_limited_request_raises_rate_limit_error_with_its_retry_after(start_server, alice):
    server = start_server(RATE_LIMIT_PER_MINUTE="3")
    city = City(owner_token=alice.token, base_url=server.url, max_retries=0)

    # A minute may turn over once while counting: twice the limit and one more always gets past.
    with pytest.raises(RateLimitError) as limited:
        for _ in range(7):
            city.credits.get()

    assert (limited.value.status, limited.value.type) == (429, "rate_limited")
    assert 0 < limited.value.retry_after <= 60


def test_no_server_is_an_api_connection_error_after_the_retries():
    city = City(owner_token="own_x", base_url=f"http://127.0.0.1:{free_port()}", max_retries=2)
    waits: list[float] = []
    city._http.sleep = waits.append

    with pytest.raises(APIConnectionError) as unreachable:
        city.credits.get()

    assert unreachable.value.status is None
    assert len(waits) == 2 and waits[0] < waits[1]  # backed off exponentially


# Safe retries


class LoseFirstAnswer(httpx.BaseTransport):
    """Forwards every request, but loses the answer to the first POST to ``path`` after the
    server acted on it, as a connection dropped mid-response would."""

    def __init__(self, path: str):
        self.inner = httpx.HTTPTransport()
        self.path = path
        self.posts: list[tuple[str, int, str | None]] = []  # key, status, replayed

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "POST":
            return response
        response.read()
        replayed = response.headers.get("Idempotent-Replayed")
        self.posts.append((request.headers["Idempotency-Key"], response.status_code, replayed))
        if request.url.path == self.path and len(self.posts) == 1:
            response.close()
            raise httpx.ReadError("connection lost before the answer", request=request)
        return response


def test_a_submit_whose_answer_was_lost_is_retried_into_one_task_and_one_hold(alice, rex, server):
    transport = LoseFirstAnswer("/api/v1/tasks")
    city = City(
        owner_token=alice.token, base_url=server.url, http_client=httpx.Client(transport=transport)
    )
    city._http.sleep = lambda seconds: None

    task = hire_rex(city, rex)

    (first_key, first, _), (second_key, second, replayed) = transport.posts
    assert first_key == second_key
    assert (first, second, replayed) == (201, 201, "true")
    assert [t.id for t in city.tasks.list().data] == [task.id]
    credits = city.credits.get()
    assert (credits.available, credits.held) == (95_000, 5000)


def test_a_4xx_is_never_retried_but_a_503_a_429_and_a_key_in_use_are_with_the_same_key():
    in_use = {"type": "conflict", "code": "idempotency_key_in_use", "message": "in flight"}
    answers = [
        httpx.Response(503, json={"error": {"type": "server_error", "message": "down"}}),
        httpx.Response(409, json={"error": in_use}),
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow"}}),
        httpx.Response(200, json={"refunded": True}),
        httpx.Response(400, json={"error": {"type": "validation_error", "code": "x"}}),
    ]
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("Idempotency-Key"))
        return answers.pop(0)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    city = City(owner_token="own_x", base_url="http://city.test", http_client=client, max_retries=3)
    waits: list[float] = []
    city._http.sleep = waits.append

    assert city.tasks.give_feedback("t1", "down") is True
    with pytest.raises(ValidationError):
        city.tasks.give_feedback("t2", "down")

    assert len(set(keys[:4])) == 1 and keys[4] != keys[0]
    assert waits[2] == 7  # Retry-After honoured
    assert len(waits) == 3 and answers == []


# The stream


def test_a_task_stream_yields_its_events_up_to_complete(owner, agent, rex):
    task = hire_rex(owner, rex)
    stream = follow_task(owner, task.id)

    work_to_completed(owner, agent, task.id)
    events = stream.until(lambda e: e.event == "complete")
    stream.close()

    assert described(events) == [
        ("status", "start"),
        ("status", "complete"),
        ("status", "pass"),
        ("complete", None),
    ]
    assert [e.data["status"] for e in events[:3]] == ["executing", "quality_check", "completed"]
    assert events[-1].data == {
        "taskId": task.id,
        "output": GOOD_REVIEW,
        "qualityScore": owner.tasks.get(task.id).quality_score,
        "creditsCharged": 2500,
    }
    assert events[-1].id is not None and events[-2].id is None  # the group's id is on its last


class CuttableProxy:
    """A TCP proxy to the server whose open connections the test can cut; it keeps what the
    clients sent (each GET arrives whole: its request line and headers)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[str] = []
        self.live: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.live += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_client:
                    self.requests.append(chunk.decode("latin-1"))
                sink.sendall(chunk)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        for sock in self.live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.live = []

    def stream_requests(self) -> list[str]:
        return [r for r in self.requests if "/stream" in r.split("\r\n", 1)[0]]

    def close(self) -> None:
        self.listener.close()
        self.cut()


def last_event_id_of(request: str) -> str | None:
    for line in request.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "last-event-id":
            return value.strip()
    return None


def test_a_stream_resumes_after_a_cut_connection_missing_and_repeating_nothing(
    owner, agent, alice, rex, server
):
    proxy = CuttableProxy(int(server.url.rsplit(":", 1)[1]))
    through_proxy = City(owner_token=alice.token, base_url=proxy.url)
    task = hire_rex(owner, rex)
    stream = follow_task(through_proxy, task.id)
    agent.tasks.mark_executing(task.id, agent.tasks.provision_sandbox(task.id))
    started = stream.next()

    proxy.cut()
    agent.tasks.complete(task.id, output=GOOD_REVIEW, execution_time_ms=1200)
    settled = stream.until(lambda e: e.event == "complete")
    assert owner.tasks.give_feedback(task.id, "up") is False
    after = stream.next()
    stream.close()
    proxy.close()

    assert described([started, *settled, after]) == [
        ("status", "start"),
        ("status", "complete"),
        ("status", "pass"),
        ("complete", None),
        ("feedback", "up"),
    ]
    first, second = proxy.stream_requests()[:2]
    assert last_event_id_of(second) == started.id != last_event_id_of(first)
    assert stream.stream.last_event_id == after.id


def test_the_stream_of_every_task_resumes_from_a_given_event_id(owner, agent, rex):
    before = hire_rex(owner, rex)
    resume_from = owner.tasks.events(before.id)[-1].id
    later = hire_rex(owner, rex)  # submitted while nobody listened
    stream = Follower(owner.stream(last_event_id=str(resume_from)))

    missed = stream.until(lambda e: e.data.get("type") == "assign")
    stream.close()

    assert [(e.task_id, e.data["type"]) for e in missed] == [
        (later.id, "submit"),
        (later.id, "assign"),
    ]


def test_a_group_cut_between_its_records_is_not_handed_out_twice():
    """The server repeats a group whose last record (the one with the id) did not arrive: the
    stream skips the records it already handed out."""
    start = 'event: status\nid: 7\ndata: {"type": "start"}\n\n'
    group = 'event: status\ndata: {"type": "pass"}\n\nevent: complete\nid: 9\ndata: {"x": 1}\n\n'
    connections: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        connections.append(request.headers.get("Last-Event-ID"))
        if len(connections) == 1:
            head = "retry: 5\n\n" + start + group[: group.index("event: complete")]

            def cut_short():
                yield head.encode()
                raise httpx.ReadError("cut", request=request)

            return httpx.Response(200, content=cut_short())
        follows = group + 'event: feedback\nid: 10\ndata: {"feedback": "up"}\n\n'
        return httpx.Response(200, content=follows.encode())

    client = httpx.Client(transport=httpx.MockTransport(handler))
    city = City(owner_token="own_x", base_url="http://city.test", http_client=client)
    waits: list[float] = []
    city._http.sleep = waits.append
    stream = city.tasks.stream("t1")

    events = [next(stream) for _ in range(4)]

    assert described(events) == [
        ("status", "start"),
        ("status", "pass"),
        ("complete", None),
        ("feedback", "up"),
    ]
    assert connections == [None, "7"] and waits == [0.005]  # the server's retry: hint
    stream.close()


# The demo agent


def test_the_demo_agent_reviews_fixes_and_fails_what_it_cannot_do(owner, alice, rex, server):
    reviewed = hire_rex(owner, rex, input={"description": "Review it", "code": REVIEWED_CODE})
    fixed = hire_rex(
        owner,
        rex,
        task_type="bug_fix",
        input={"description": "Fix it", "files": [{"name": "load.py", "content": REVIEWED_CODE}]},
    )
    repo_only = hire_rex(owner, rex, input={"description": "Review it", "repo": "https://x.test"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITY_")}

    run = subprocess.run(
        [
            *(sys.executable, "-m", "city_sdk.demo_agent", "--once"),
            *("--api-key", rex.key, "--base-url", server.url),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3 and all(
        t.id in line for t, line in zip((reviewed, fixed, repo_only), lines, strict=True)
    )
    review = wait_for(
        lambda: (t := owner.tasks.get(reviewed.id)).status == "completed" and t, "the review"
    )
    findings = {(f["line"], f["severity"]) for f in review.output["findings"]}
    assert findings == {(4, "low"), (7, "high")}  # the TODO and the bare except
    assert "TODO" in review.output["findings"][0]["message"]
    assert "except" in review.output["findings"][1]["message"]
    fix = wait_for(lambda: (t := owner.tasks.get(fixed.id)).status == "completed" and t, "the fix")
    assert "+    except Exception:" in fix.output["patch"]
    failed = owner.tasks.get(repo_only.id)
    assert (failed.status, failed.failure_reason) == ("failed", "execution_error")
    assert "no code" in failed.error_message
    assert owner.credits.get().available == 100_000 - 2500 - 4000


def test_the_running_demo_agent_is_woken_by_its_stream_and_stops_on_sigterm(owner, rex, server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITY_")}
    code = {"description": "Review it", "code": REVIEWED_CODE}
    first = hire_rex(owner, rex, input=code)  # found by its first poll
    agent = subprocess.Popen(
        [
            *(sys.executable, "-m", "city_sdk.demo_agent", "--interval", "3600"),
            *("--api-key", rex.key, "--base-url", server.url),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: owner.tasks.get(first.id).status == "completed", "the first review")
        # Its next poll is an hour away: only an event on its stream can wake it for this one.
        second = hire_rex(owner, rex, input=code)
        done = wait_for(
            lambda: (t := owner.tasks.get(second.id)).status == "completed" and t,
            "the second review",
        )
    finally:
        agent.send_signal(signal.SIGTERM)
        output, _ = agent.communicate(timeout=30)

    assert agent.returncode == 0, output
    assert {f["line"] for f in done.output["findings"]} == {4, 7}
    assert f"task {second.id} code_review: handed in" in output
