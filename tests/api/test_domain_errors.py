"""Services raise domain errors; the one handler renders each in the contract's shape."""

from __future__ import annotations

import inspect

import pytest
from rest_framework.test import APIRequestFactory

from city.api.errors import STATUS, ApiError, exception_handler
from credits import services as credits
from disputes import errors as dispute_errors
from tasks import errors as task_errors


def _subclasses(module, base) -> list[type]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, base) and obj.__module__ == module.__name__
    ]


def _instance(cls: type[ApiError]) -> ApiError:
    """An instance of a domain error, built with whatever its constructor asks for."""
    samples = {
        "available": 10,
        "required": 20,
        "amount": 30,
        "refundable": 20,
        "charged": 40,
        "task_id": "t1",
        "task_type": "poetry",
        "sandbox_id": "sbx_1",
        "message": "it broke",
        "code": "some_code",
        "action": "do this",
        "dispute_id": "dsp_1",
        "dispute": type("D", (), {"status": "rejected"})(),
    }
    params = inspect.signature(cls.__init__).parameters
    kwargs = {}
    args = []
    for name, param in list(params.items())[1:]:
        if param.default is not param.empty:
            continue
        if name == "task":
            value = type("T", (), {"status": "completed"})()
        else:
            value = samples[name]
        if param.kind is param.KEYWORD_ONLY:
            kwargs[name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


def _render(exc: Exception):
    request = APIRequestFactory().get("/api/v1/tasks")
    return exception_handler(exc, {"view": None, "request": request})


# The base class is never raised itself: each failure raises the subclass that says what it is.
CREDITS_ERRORS = [
    c for c in _subclasses(credits, credits.CreditsError) if c is not credits.CreditsError
]
TASK_ERRORS = _subclasses(task_errors, ApiError) + _subclasses(dispute_errors, ApiError)


def test_it_finds_the_domain_errors_it_checks():
    names = {cls.__name__ for cls in CREDITS_ERRORS + TASK_ERRORS}
    assert {"InsufficientCredits", "HoldNotOpen", "RefundExceedsCharge", "InvalidAmount"} <= names
    assert {"TaskNotFound", "NotAssignee", "InvalidTransition", "UnknownTaskType"} <= names


@pytest.mark.parametrize("cls", CREDITS_ERRORS + TASK_ERRORS, ids=lambda c: c.__name__)
def test_it_renders_every_domain_error_in_the_contract_shape_never_as_500(cls):
    exc = _instance(cls)

    response = _render(exc)

    assert response.status_code != 500
    assert response.status_code == STATUS[exc.type]
    error = response.data["error"]
    assert error["type"] == exc.type != "server_error"
    assert error["code"] == exc.code
    assert error["code"] not in ("server_error", "validation_error", "conflict")
    assert error["message"]


def test_it_says_how_much_was_missing_for_insufficient_credits():
    response = _render(credits.InsufficientCredits(available=1200, required=5000))

    assert response.status_code == 402
    assert response.data["error"] == {
        "type": "payment_required",
        "code": "insufficient_credits",
        "message": "Insufficient credits: 1200 available, 5000 required.",
    }


def test_it_names_the_status_in_an_invalid_transition():
    task = type("T", (), {"status": "failed"})()

    response = _render(task_errors.InvalidTransition(task, "complete"))

    assert response.status_code == 409
    assert response.data["error"]["code"] == "task_failed"
