"""Reading tasks: GET /tasks/{id}, the task list, an agent's submitted queue, a task's events,
and the directory of agents."""

from __future__ import annotations

from datetime import datetime

import pytest

from city.identity.models import Agent
from credits.services import grant_issue
from tests.actions import assert_error, fail, run_to_completion, start, sub_hire, submit, thumbs
from tests.factories import error_of, make_agent


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [task["id"] for task in response.json()["data"]]


# GET /tasks/{id}


def test_it_shows_a_task_to_its_caller(alice, submitted):
    response = alice.api.get(f"/api/v1/tasks/{submitted['id']}")
    assert response.status_code == 200
    assert response.json() == submitted


def test_it_shows_a_task_to_its_assigned_agent(rex, executing):
    response = rex.api.get(f"/api/v1/tasks/{executing['id']}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["sandboxId"]) == (
        executing["id"],
        "executing",
        executing["sandboxId"],
    )


@pytest.mark.parametrize("outsider", ["bob", "charlie", "zed"])
def test_it_hides_a_task_from_anyone_else(request, submitted, outsider):
    # bob operates rex, the assignee, but is neither the caller nor the agent
    person = request.getfixturevalue(outsider)
    response = person.api.get(f"/api/v1/tasks/{submitted['id']}")
    assert_error(response, 404, "task_not_found")
    assert error_of(response)["type"] == "not_found"


def test_it_answers_404_for_an_unknown_task(alice):
    assert_error(alice.api.get("/api/v1/tasks/doesnotexist"), 404, "task_not_found")


def test_it_shows_a_sub_hire_to_both_agents_and_to_no_owner(alice, bob, rex, zed):
    grant_issue(agent=rex.agent, amount=5000)
    task = sub_hire(rex, agentId=zed.id)

    for agent in (rex, zed):
        assert agent.api.get(f"/api/v1/tasks/{task['id']}").json()["id"] == task["id"]
    for owner in (alice, bob):
        assert_error(owner.api.get(f"/api/v1/tasks/{task['id']}"), 404, "task_not_found")


# GET /tasks


def test_it_pages_twenty_tasks_at_a_time_newest_first(alice, linguist):
    created = [submit(alice, taskType="translation", maxBudget=100)["id"] for _ in range(21)]
    newest_first = created[::-1]

    first = alice.api.get("/api/v1/tasks")
    second = alice.api.get("/api/v1/tasks", {"page": 2})

    assert ids(first) == newest_first[:20]
    assert first.json()["pagination"] == {"page": 1, "pageSize": 20, "total": 21, "totalPages": 2}
    assert ids(second) == newest_first[20:]
    assert second.json()["pagination"]["page"] == 2


def test_it_counts_total_pages_by_ceiling_and_answers_empty_past_the_end(alice, linguist):
    created = [submit(alice, taskType="translation", maxBudget=100)["id"] for _ in range(5)]

    last = alice.api.get("/api/v1/tasks", {"page": 3, "pageSize": 2})
    past = alice.api.get("/api/v1/tasks", {"page": 4, "pageSize": 2})
    whole = alice.api.get("/api/v1/tasks", {"pageSize": 100})

    assert ids(last) == [created[0]]
    assert last.json()["pagination"] == {"page": 3, "pageSize": 2, "total": 5, "totalPages": 3}
    assert ids(past) == []
    assert past.json()["pagination"] == {"page": 4, "pageSize": 2, "total": 5, "totalPages": 3}
    assert ids(whole) == created[::-1]


def test_it_answers_empty_for_a_page_far_past_the_end(alice, submitted):
    response = alice.api.get("/api/v1/tasks", {"page": 10**19})
    assert response.status_code == 200, response.content
    assert response.json()["data"] == []


def test_it_lists_nothing_for_an_owner_without_tasks(bob):
    response = bob.api.get("/api/v1/tasks")
    assert response.status_code == 200
    assert response.json() == {
        "data": [],
        "pagination": {"page": 1, "pageSize": 20, "total": 0, "totalPages": 0},
    }


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"page": 0}, "page_too_small", "page"),
        ({"page": "two"}, "page_invalid", "page"),
        ({"pageSize": 0}, "page_size_too_small", "pageSize"),
        ({"pageSize": 101}, "page_size_too_large", "pageSize"),
        ({"status": "done"}, "status_invalid", "status"),
        ({"role": "boss"}, "role_invalid", "role"),
    ],
)
def test_it_rejects_bad_list_parameters(alice, params, code, param):
    response = alice.api.get("/api/v1/tasks", params)
    assert_error(response, 400, code, param)
    assert error_of(response)["type"] == "validation_error"


def test_it_filters_the_list_by_status(alice, rex, linguist):
    waiting = submit(alice, agentId=rex.id)["id"]
    failed = submit(alice, agentId=rex.id)["id"]
    fail(rex, failed)
    routing = submit(alice, taskType="translation")["id"]

    assert ids(alice.api.get("/api/v1/tasks", {"status": "submitted"})) == [waiting]
    assert ids(alice.api.get("/api/v1/tasks", {"status": "failed"})) == [failed]
    assert ids(alice.api.get("/api/v1/tasks", {"status": "routing"})) == [routing]
    completed = alice.api.get("/api/v1/tasks", {"status": "completed"})
    assert ids(completed) == []
    assert completed.json()["pagination"]["total"] == 0


def test_it_lists_only_the_owner_own_tasks(alice, charlie, rex):
    mine = submit(alice, agentId=rex.id)["id"]
    theirs = submit(charlie, agentId=rex.id)["id"]

    assert ids(alice.api.get("/api/v1/tasks")) == [mine]
    assert ids(charlie.api.get("/api/v1/tasks")) == [theirs]


def test_it_lists_an_agent_tasks_as_caller_and_assignee(alice, rex, zed, submitted):
    grant_issue(agent=rex.agent, amount=5000)
    hired = sub_hire(rex, agentId=zed.id)["id"]

    assert ids(rex.api.get("/api/v1/tasks")) == [hired, submitted["id"]]
    assert ids(rex.api.get("/api/v1/tasks", {"role": "caller"})) == [hired]
    assert ids(rex.api.get("/api/v1/tasks", {"role": "assignee"})) == [submitted["id"]]
    assert ids(zed.api.get("/api/v1/tasks")) == [hired]
    assert ids(zed.api.get("/api/v1/tasks", {"role": "caller"})) == []


def test_it_gives_an_owner_nothing_as_assignee_and_its_tasks_as_caller(alice, submitted):
    assignee = alice.api.get("/api/v1/tasks", {"role": "assignee"})
    assert ids(assignee) == []
    assert assignee.json()["pagination"]["total"] == 0
    assert ids(alice.api.get("/api/v1/tasks", {"role": "caller"})) == [submitted["id"]]


# GET /agent/tasks/submitted


def test_it_queues_only_submitted_tasks_assigned_to_the_agent_oldest_first(
    alice, charlie, rex, zed, linguist
):
    first = submit(alice, agentId=rex.id)["id"]
    second = submit(charlie, agentId=rex.id)["id"]
    started = submit(alice, agentId=rex.id)["id"]
    start(rex, started)
    failed = submit(alice, agentId=rex.id)["id"]
    fail(rex, failed)
    submit(alice, agentId=zed.id)
    submit(alice, taskType="translation")
    grant_issue(agent=rex.agent, amount=5000)
    hired = sub_hire(rex, agentId=zed.id)["id"]
    routed = submit(alice, taskType="bug_fix", maxBudget=4000)["id"]  # routed to rex

    response = rex.api.get("/api/v1/agent/tasks/submitted")

    assert response.status_code == 200
    queue = response.json()
    assert isinstance(queue, list)
    assert [task["id"] for task in queue] == [first, second, routed]
    assert {task["status"] for task in queue} == {"submitted"}
    assert {task["agentId"] for task in queue} == {rex.id}
    assert hired in [task["id"] for task in zed.api.get("/api/v1/agent/tasks/submitted").json()]


def test_it_queues_nothing_for_an_idle_agent(rex):
    response = rex.api.get("/api/v1/agent/tasks/submitted")
    assert (response.status_code, response.json()) == (200, [])


def test_it_refuses_the_submitted_queue_to_an_owner(alice):
    response = alice.api.get("/api/v1/agent/tasks/submitted")
    assert_error(response, 403, "wrong_principal_kind")


# GET /tasks/{id}/events


def test_it_lists_a_task_events_oldest_first(alice, rex, completed):
    response = alice.api.get(f"/api/v1/tasks/{completed['id']}/events")

    assert response.status_code == 200
    events = response.json()
    for event in events:
        assert set(event) == {"id", "type", "from", "to", "actor", "data", "createdAt"}
    owner, agent = f"owner:{alice.owner.pk}", f"agent:{rex.id}"
    assert [(e["type"], e["from"], e["to"], e["actor"]) for e in events] == [
        ("submit", None, "submitted", owner),
        ("assign", "submitted", "submitted", owner),
        ("sandbox_provision", "submitted", "submitted", agent),
        ("start", "submitted", "executing", agent),
        ("complete", "executing", "quality_check", agent),
        ("pass", "quality_check", "completed", "system"),
    ]
    assert events[0]["data"] == {"maxBudget": 5000, "routing": "direct"}
    assert events[3]["data"] == {"sandboxId": completed["sandboxId"]}
    assert events[4]["data"] == {"executionTimeMs": 1200, "qualityScore": None}
    assert events[5]["data"]["score"] == completed["qualityScore"]
    event_ids = [e["id"] for e in events]
    assert event_ids == sorted(event_ids) and len(set(event_ids)) == len(event_ids)
    moments = [datetime.fromisoformat(e["createdAt"]) for e in events]
    assert moments == sorted(moments)


def test_it_records_a_failure_with_its_reason(alice, rex, submitted):
    fail(rex, submitted["id"])

    events = alice.api.get(f"/api/v1/tasks/{submitted['id']}/events").json()

    assert (events[-1]["type"], events[-1]["from"], events[-1]["to"]) == (
        "fail",
        "submitted",
        "failed",
    )
    assert events[-1]["data"] == {"reason": "execution_error", "errorMessage": ""}


def test_it_shows_the_events_to_the_assignee_and_hides_them_from_others(
    alice, charlie, rex, zed, submitted
):
    path = f"/api/v1/tasks/{submitted['id']}/events"
    assert rex.api.get(path).json() == alice.api.get(path).json()
    for outsider in (charlie, zed):
        assert_error(outsider.api.get(path), 404, "task_not_found")


# GET /agents


def test_it_lists_active_agents_with_prices_rating_and_record(alice, rex, zed):
    response = alice.api.get("/api/v1/agents")

    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "id": rex.id,
                "name": "rex",
                "taskTypes": [
                    {"taskType": "bug_fix", "price": 4000},
                    {"taskType": "code_review", "price": 2500},
                ],
                "rating": None,
                "completedTasks": 0,
            },
            {
                "id": zed.id,
                "name": "zed",
                "taskTypes": [{"taskType": "code_review", "price": 3000}],
                "rating": None,
                "completedTasks": 0,
            },
        ],
        "pagination": {"page": 1, "pageSize": 20, "total": 2, "totalPages": 1},
    }
    assert rex.api.get("/api/v1/agents").json() == response.json()


def test_it_pages_the_agent_directory(alice, rex, zed):
    second = alice.api.get("/api/v1/agents", {"page": 2, "pageSize": 1})
    assert ids(second) == [zed.id]
    assert second.json()["pagination"] == {"page": 2, "pageSize": 1, "total": 2, "totalPages": 2}
    assert_error(
        alice.api.get("/api/v1/agents", {"pageSize": 101}), 400, "page_size_too_large", "pageSize"
    )


def test_it_filters_the_directory_by_task_type(alice, rex, zed):
    assert ids(alice.api.get("/api/v1/agents", {"taskType": "bug_fix"})) == [rex.id]
    assert ids(alice.api.get("/api/v1/agents", {"taskType": "code_review"})) == [rex.id, zed.id]
    assert ids(alice.api.get("/api/v1/agents", {"taskType": "translation"})) == []


def test_it_rejects_a_task_type_filter_that_is_not_a_slug(alice):
    response = alice.api.get("/api/v1/agents", {"taskType": "Code-Review"})
    assert_error(response, 400, "task_type_invalid", "taskType")


def test_it_leaves_suspended_agents_out_of_the_directory(alice, rex, zed):
    Agent.objects.filter(pk=zed.id).update(status=Agent.Status.SUSPENDED)
    assert ids(alice.api.get("/api/v1/agents")) == [rex.id]
    assert ids(alice.api.get("/api/v1/agents", {"taskType": "code_review"})) == [rex.id]


def test_it_counts_only_completed_tasks_in_the_record(alice, rex, zed, completed):
    fail(rex, submit(alice, agentId=rex.id)["id"])
    submit(alice, agentId=rex.id)
    start(rex, submit(alice, agentId=rex.id)["id"])

    listed = {a["id"]: a for a in alice.api.get("/api/v1/agents").json()["data"]}
    filtered = alice.api.get("/api/v1/agents", {"taskType": "code_review"}).json()["data"]

    assert (listed[rex.id]["completedTasks"], listed[zed.id]["completedTasks"]) == (1, 0)
    assert filtered[0]["completedTasks"] == 1


def test_it_rates_an_agent_by_its_share_of_thumbs_up(alice, rex):
    tasks = [submit(alice, agentId=rex.id)["id"] for _ in range(4)]
    for task_id in tasks:
        run_to_completion(rex, task_id)
    assert thumbs(alice, tasks[0], "up").status_code == 200
    assert thumbs(alice, tasks[1], "up").status_code == 200
    assert thumbs(alice, tasks[2], "down").status_code == 200  # refunds; the fourth stays unrated

    agent = alice.api.get("/api/v1/agents", {"taskType": "bug_fix"}).json()["data"][0]

    assert agent["rating"] == 67  # 2 of 3 rated tasks, rounded
    assert agent["completedTasks"] == 4  # a refunded task was still completed


def test_it_omits_a_rating_until_feedback_is_given(alice, bob):
    helper = make_agent(bob, "helper", {"translation": 500})
    run_to_completion(helper, submit(alice, agentId=helper.id, taskType="translation")["id"])

    agent = alice.api.get("/api/v1/agents", {"taskType": "translation"}).json()["data"][0]

    assert (agent["id"], agent["rating"], agent["completedTasks"]) == (helper.id, None, 1)
