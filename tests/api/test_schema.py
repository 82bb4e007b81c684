"""The OpenAPI schema: generated with no warning, valid, and faithful to API.md."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import call_command
from django.test import Client

from tests.contract import task_fields, task_nullable

# API.md's endpoints implemented so far, with the SDK method names as operation ids.
OPERATIONS = {
    ("/api/v1/tasks", "post"): "submit",
    ("/api/v1/tasks", "get"): "list",
    ("/api/v1/tasks/{task_id}", "get"): "get",
    ("/api/v1/tasks/{task_id}/events", "get"): "listEvents",
    ("/api/v1/tasks/{task_id}/stream", "get"): "streamTask",  # streamUrl's target
    ("/api/v1/stream", "get"): "streamAll",
    ("/api/v1/tasks/{task_id}/sandbox", "post"): "provisionSandbox",
    ("/api/v1/tasks/{task_id}/sandbox/{sandbox_id}", "delete"): "destroySandbox",
    ("/api/v1/tasks/{task_id}/executing", "post"): "markExecuting",
    ("/api/v1/tasks/{task_id}/complete", "post"): "complete",
    ("/api/v1/tasks/{task_id}/fail", "post"): "fail",
    ("/api/v1/tasks/{task_id}/feedback", "post"): "giveFeedback",
    ("/api/v1/tasks/{task_id}/cancel", "post"): "cancel",
    ("/api/v1/tasks/{task_id}/disputes", "post"): "dispute",
    ("/api/v1/disputes", "get"): "listDisputes",
    ("/api/v1/disputes/{dispute_id}", "get"): "getDispute",
    ("/api/v1/disputes/{dispute_id}/withdraw", "post"): "withdrawDispute",
    ("/api/v1/agent/tasks", "post"): "submitAsAgent",
    ("/api/v1/agent/tasks/submitted", "get"): "listSubmitted",
    ("/api/v1/agents", "get"): "listAgents",
    ("/api/v1/credits", "get"): "getCredits",
    ("/api/v1/credits/entries", "get"): "listCreditEntries",
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    """Generated as CI would: any warning or validation error fails the command."""
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", path
    )
    return json.loads(path.read_text())


def components(schema: dict) -> dict:
    return schema["components"]["schemas"]


def test_it_documents_every_implemented_operation_with_its_sdk_name(schema):
    found = {
        (path, method): operation["operationId"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert found == OPERATIONS


def test_it_leaves_out_the_catch_all_and_the_schema_itself(schema):
    assert set(schema["paths"]) == {path for path, _ in OPERATIONS}


def test_it_gives_the_task_every_field_of_the_contract(schema):
    task = components(schema)["Task"]
    assert set(task["properties"]) == task_fields()
    assert set(task["required"]) == task_fields()
    nullable = {name for name, field in task["properties"].items() if field.get("nullable")}
    assert nullable == task_nullable()
    assert components(schema)["TaskStatus"]["enum"] == [
        "submitted",
        "routing",
        "executing",
        "quality_check",
        "completed",
        "failed",
        "refunded",
    ]


def test_it_describes_pages_as_the_contract_does(schema):
    page = components(schema)["PaginatedTaskList"]["properties"]
    assert page["data"]["items"] == {"$ref": "#/components/schemas/Task"}
    pagination = components(schema)["Pagination"]
    assert set(pagination["properties"]) == {"page", "pageSize", "total", "totalPages"}


def test_it_documents_the_error_body_on_failures(schema):
    error = components(schema)["Error"]["properties"]["error"]
    assert error == {"$ref": "#/components/schemas/ErrorDetail"}
    detail = components(schema)["ErrorDetail"]
    assert set(detail["properties"]) == {"type", "code", "message", "param"}
    submit = schema["paths"]["/api/v1/tasks"]["post"]["responses"]
    assert set(submit) == {"201", "400", "401", "402", "403", "409", "413", "429"}
    assert submit["402"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_it_accepts_an_idempotency_key_on_every_post(schema):
    posts = [path for path, method in OPERATIONS if method == "post"]
    for path in posts:
        parameters = schema["paths"][path]["post"]["parameters"]
        assert ("header", "Idempotency-Key") in {(p["in"], p["name"]) for p in parameters}, path


def test_it_declares_both_ways_to_authenticate(schema):
    schemes = schema["components"]["securitySchemes"]
    assert (schemes["bearerAuth"]["type"], schemes["bearerAuth"]["scheme"]) == ("http", "bearer")
    assert schemes["cookieAuth"]["in"] == "cookie"
    for item in schema["paths"].values():
        for operation in item.values():
            assert operation["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]


def test_it_serves_the_schema_without_credentials():
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/tasks" in response.content


def test_it_documents_413_on_every_operation_that_takes_a_body(schema):
    for path, method in OPERATIONS:
        responses = schema["paths"][path][method]["responses"]
        assert ("413" in responses) == (method == "post"), (path, method)


def test_it_says_which_bodies_refuse_unknown_keys(schema):
    refusing = {
        name
        for name, component in components(schema).items()
        if component.get("additionalProperties") is False
    }
    assert {"SubmitInput", "TaskFeedbackInput", "TaskFailInput", "DisputeInput"} <= refusing
    assert components(schema)["TaskInput"]["additionalProperties"] is True


def test_it_says_a_trimmed_string_needs_more_than_whitespace(schema):
    description = components(schema)["TaskInput"]["properties"]["description"]
    assert (description["minLength"], description["pattern"]) == (1, r"\S")


def test_it_serves_swagger_ui_and_its_assets_without_credentials():
    page = Client().get("/api/docs/")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), page.text
    for asset in assets:  # served by City itself, nothing fetched from the internet
        assert Client().get(asset).status_code == 200, asset
    assert "cdn" not in page.text.lower()
