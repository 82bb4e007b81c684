"""A query parameter given empty is refused, as the schema's non-empty values say; left out, it
takes its default."""

from __future__ import annotations

import pytest

from tests.actions import assert_error


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/tasks?status=", "status"),
        ("/api/v1/tasks?role=", "role"),
        ("/api/v1/tasks?page=", "page"),
        ("/api/v1/tasks?pageSize=", "pageSize"),
        ("/api/v1/disputes?status=", "status"),
        ("/api/v1/agents?taskType=", "taskType"),
        ("/api/v1/credits/entries?page=", "page"),
    ],
)
def test_an_empty_query_parameter_is_a_400_naming_it(alice, path, param):
    assert_error(alice.api.get(path), 400, "blank_parameter", param)


def test_a_parameter_left_out_takes_its_default(alice):
    response = alice.api.get("/api/v1/tasks")

    assert response.status_code == 200
    assert response.json()["pagination"] == {"page": 1, "pageSize": 20, "total": 0, "totalPages": 0}
