"""Free-form JSON that a database cannot store, or too much of it, is a 400 before anything
is written (API.md: invalid_json_value, input_too_large, output_too_large)."""

from __future__ import annotations

import json

import pytest

from tasks.models import Task
from tests.factories import GOOD_OUTPUT, error_of, task_body

NUL = "a\u0000b"
SURROGATE = "\ud800"

# Raw bodies: json.dumps would refuse some of these, and the point is what a client can send.
UNSTORABLE = [
    pytest.param('"a\\u0000b"', id="nul-in-value"),
    pytest.param('"\\ud800"', id="lone-surrogate"),
    pytest.param("1e400", id="number-out-of-range"),
    pytest.param("-1e400", id="negative-number-out-of-range"),
]


def raw_submit(person, input_json: str):
    body = (
        '{"taskType": "code_review", "maxBudget": 5000, '
        f'"input": {{"description": "Review this", {input_json}}}}}'
    )
    return person.api.post("/api/v1/tasks", raw=body)


def assert_nothing_held(person) -> None:
    assert not Task.objects.exists()
    balance = person.balance()
    assert (balance.available, balance.held) == (100_000, 0)


@pytest.mark.parametrize("value", UNSTORABLE)
def test_it_refuses_an_unstorable_value_in_input(alice, rex, value):
    response = raw_submit(alice, f'"extra": {value}')

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "validation_error",
        "invalid_json_value",
        "input.extra",
    )
    assert_nothing_held(alice)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_it_refuses_non_json_number_literals_as_malformed(alice, rex, literal):
    response = raw_submit(alice, f'"extra": {literal}')

    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
    assert_nothing_held(alice)


def test_it_names_the_path_of_a_nested_unstorable_value(alice, rex):
    response = raw_submit(alice, '"extra": {"notes": ["fine", {"deep": "a\\u0000b"}]}')

    assert response.status_code == 400
    assert error_of(response)["param"] == "input.extra.notes[1].deep"
    assert_nothing_held(alice)


def test_it_refuses_a_nul_in_a_key(alice, rex):
    response = raw_submit(alice, '"extra": {"a\\u0000b": 1}')

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json_value"
    assert error["param"] == "input.extra.a\\u0000b"
    assert_nothing_held(alice)


@pytest.mark.parametrize("field", ["description", "code", "repo"])
def test_it_refuses_a_nul_in_a_named_input_field(alice, rex, field):
    response = raw_submit(alice, f'"{field}": "a\\u0000b"')

    assert response.status_code == 400
    assert error_of(response)["param"] == f"input.{field}"
    assert_nothing_held(alice)


@pytest.mark.parametrize("value", UNSTORABLE)
def test_it_refuses_an_unstorable_value_in_output(executing, rex, value):
    tid = executing["id"]
    body = f'{{"output": {{"summary": {value}, "findings": []}}, "executionTimeMs": 5}}'

    response = rex.api.post(f"/api/v1/tasks/{tid}/complete", raw=body)

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert (error["code"], error["param"]) == ("invalid_json_value", "output.summary")
    assert Task.objects.get(pk=tid).status == "executing"


@pytest.mark.parametrize("field", ["reason", "errorMessage"])
def test_it_refuses_a_nul_in_a_failure(executing, rex, field):
    tid = executing["id"]
    body = {"reason": "execution_error", "errorMessage": "boom"}
    raw = json.dumps(body).replace(f'"{field}": "', f'"{field}": "\\u0000', 1)

    response = rex.api.post(f"/api/v1/tasks/{tid}/fail", raw=raw)

    assert response.status_code == 400, response.content
    assert error_of(response)["param"] == field
    assert Task.objects.get(pk=tid).status == "executing"


def test_it_refuses_an_input_over_the_limit_and_holds_nothing(alice, rex, settings):
    settings.MAX_TASK_INPUT_BYTES = 1000
    response = alice.api.post(
        "/api/v1/tasks", task_body(input={"description": "big", "blob": "x" * 1000})
    )

    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "validation_error",
        "input_too_large",
        "input",
    )
    assert_nothing_held(alice)


def test_it_counts_the_input_limit_in_utf8_bytes(alice, rex, settings):
    settings.MAX_TASK_INPUT_BYTES = 1000
    # 400 characters, 1,200 bytes in UTF-8: over the limit although short in characters.
    response = alice.api.post(
        "/api/v1/tasks", task_body(input={"description": "é" * 10, "code": "€" * 400})
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "input_too_large"


def test_it_accepts_an_input_at_the_limit(alice, rex, settings):
    body = task_body(agentId=rex.id)
    settings.MAX_TASK_INPUT_BYTES = len(
        json.dumps(body["input"], separators=(",", ":"), ensure_ascii=False).encode()
    )

    response = alice.api.post("/api/v1/tasks", body)

    assert response.status_code == 201, response.content
    assert response.json()["input"] == body["input"]


def test_it_refuses_an_output_over_the_limit(executing, rex, settings):
    settings.MAX_TASK_OUTPUT_BYTES = 500
    tid = executing["id"]
    output = {**GOOD_OUTPUT, "log": "y" * 500}

    response = rex.api.post(
        f"/api/v1/tasks/{tid}/complete", {"output": output, "executionTimeMs": 10}
    )

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("output_too_large", "output")
    assert Task.objects.get(pk=tid).status == "executing"


def test_it_keeps_storable_unicode_as_sent(alice, rex):
    extra = {"emoji": "🧪 \U0001f600", "cjk": "漢字", "escaped": "tab\tnewline\n"}

    response = alice.api.post(
        "/api/v1/tasks", task_body(agentId=rex.id, input={"description": "ok", "extra": extra})
    )

    assert response.status_code == 201
    assert Task.objects.get(pk=response.json()["id"]).input["extra"] == extra
