"""The quality gate: the heuristic evaluator's score, the 20% self-report blend, and the task's
fate. Each rule's passing and failing cases are in test_quality_rules.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils.module_loading import import_string

from tasks import quality
from tasks.models import Task
from tasks.quality import HeuristicEvaluator, Verdict
from tests.actions import entries, hand_in, hand_in_and_get, platform_fees
from tests.factories import GOOD_OUTPUT

FIXED = "tests.tasks.test_quality.FixedEvaluator"


class FixedEvaluator:
    """A plug-in evaluator for these tests: whatever the output, it gives ``given``."""

    given = Verdict(50, True, ["fixed by the test"])

    def score(self, task) -> Verdict:
        return FixedEvaluator.given


@pytest.fixture
def fixed(settings, monkeypatch):
    settings.QUALITY_EVALUATOR = FIXED
    assert import_string(FIXED) is FixedEvaluator

    def give(score: int, substantive: bool = True) -> None:
        monkeypatch.setattr(
            FixedEvaluator, "given", Verdict(score, substantive, ["fixed by the test"])
        )

    return give


def task(output, reported: int | None = None, task_type: str = "code_review", ms: int = 1200):
    """A task as the quality check reads it: the suite's standard code_review by default."""
    return SimpleNamespace(
        task_type=task_type,
        input={"description": "Review this snippet", "code": "x = 1\n"},
        output=output,
        execution_time_ms=ms,
        self_reported_quality_score=reported,
    )


def heuristic(output, task_type: str = "code_review") -> Verdict:
    return HeuristicEvaluator().score(task(output, task_type=task_type))


def generic(output) -> Verdict:
    """The heuristic's verdict on a type it has no rules for: the generic rules alone."""
    return heuristic(output, task_type="translation")


def evaluate(output, reported: int | None = None) -> Verdict:
    return quality.evaluate(task(output, reported))


# The heuristic evaluator


def test_it_fails_an_empty_object():
    verdict = heuristic({})
    assert (verdict.score, verdict.substantive, verdict.passed) == (0, False, False)


@pytest.mark.parametrize(
    "output", [None, [], [GOOD_OUTPUT], "a long enough string of text", 12345678901, True]
)
def test_it_fails_an_output_that_is_not_an_object(output):
    verdict = heuristic(output)
    assert (verdict.score, verdict.substantive, verdict.passed) == (0, False, False)


@pytest.mark.parametrize(
    "output",
    [
        {"summary": ""},
        {"summary": "          "},
        {"summary": None},
        {"ok": True, "done": False},
        {"findings": [], "details": {}},
        {"summary": "ok"},
        {"summary": "x" * 9},  # 9 characters: short of the 10 one value needs
        {"findings": ["ab", "c"]},  # two values, but 3 characters: short of 4
        {"a": "abcd", "b": "efgh", "c": "ijkl"},  # each field trivial on its own
        {"findings": [{"line": None, "message": ""}], "summary": " "},
    ],
)
def test_it_fails_an_object_of_trivial_values(output):
    verdict = generic(output)
    assert (verdict.score, verdict.substantive, verdict.passed) == (0, False, False)


@pytest.mark.parametrize(
    ("output", "score"),
    [
        # 50 + 12 x min(substantive fields, 3) + min(14, characters // 25), as docs/quality.md
        # says, for a type with no rules of its own.
        (GOOD_OUTPUT, 76),
        ({"summary": "x" * 10}, 62),
        ({"findings": ["ab", "cd"]}, 62),  # 4 characters over two values
        ({"summary": "x" * 10, "noise": "", "flag": True}, 62),  # trivial fields add nothing
        ({"a": "x" * 100, "b": "y" * 100, "c": "z" * 100}, 98),  # 300 // 25 = 12
        ({"a": "x" * 150, "b": "y" * 150, "c": "z" * 150}, 100),
        ({f"k{i}": "x" * 1000 for i in range(10)}, 100),  # capped at 100
    ],
)
def test_it_scores_substantive_output(output, score):
    verdict = generic(output)
    assert (verdict.score, verdict.substantive) == (score, True)


def test_it_passes_the_good_output():
    verdict = evaluate(GOOD_OUTPUT)
    assert verdict.passed
    # The generic 76, and 10 for a code_review's findings with lines.
    assert verdict.score == 86
    assert verdict.reasons == [
        "2 substantive fields (+74)",
        "59 characters of text (+2)",
        "code_review: 1 finding, each with a line and a message (+10)",
        "code_review: 1 line found in the code reviewed (+0)",
        "execution time 1200 ms is plausible for a code_review (+0)",
    ]


def test_it_passes_the_good_output_handed_in_implausibly_fast():
    verdict = quality.evaluate(task(GOOD_OUTPUT, ms=0))
    assert (verdict.score, verdict.passed) == (66, True)
    assert verdict.reasons[-1] == (
        "execution time 0 ms is implausibly short for a code_review (under 100 ms) (-20)"
    )


def test_it_passes_the_readmes_demo_output():
    output = {
        "findings": [{"line": 1, "severity": "low", "message": "unused name x"}],
        "summary": "One finding.",
    }
    verdict = evaluate(output, 85)
    assert (verdict.score, verdict.passed) == (85, True)


def test_it_scores_more_substance_higher():
    one = generic({"summary": "One finding: x is never used."})
    two = generic({"summary": "One finding: x is never used.", "fix": "Delete line 1."})
    assert one.score < two.score


# Blending the agent's own score


def test_it_leaves_the_score_alone_without_a_self_report():
    assert evaluate(GOOD_OUTPUT).score == heuristic(GOOD_OUTPUT).score


@pytest.mark.parametrize(("reported", "blended"), [(100, 60), (0, 40), (50, 50), (75, 55)])
def test_it_weighs_the_self_report_at_20_percent(fixed, reported, blended):
    fixed(50)
    assert evaluate({"any": "thing"}, reported).score == blended


@pytest.mark.parametrize("reported", [0, 1, 33, 50, 77, 99, 100])
def test_it_never_lets_the_self_report_move_the_score_more_than_20_percent(reported):
    own = heuristic(GOOD_OUTPUT).score
    blended = evaluate(GOOD_OUTPUT, reported).score
    assert abs(blended - own) <= 0.2 * abs(reported - own) + 0.5


def test_it_does_not_let_a_self_report_of_100_lift_a_49_to_a_pass_at_60(fixed, settings):
    settings.QUALITY_PASS_SCORE = 60
    fixed(49)
    verdict = evaluate({"any": "thing"}, 100)
    assert (verdict.score, verdict.passed) == (59, False)


def test_it_ignores_the_self_report_on_an_output_without_substance():
    verdict = evaluate({}, 100)
    assert (verdict.score, verdict.passed) == (0, False)


# The pass score


def test_it_passes_at_the_pass_score_and_fails_below_it(settings):
    score = heuristic(GOOD_OUTPUT).score
    settings.QUALITY_PASS_SCORE = score
    assert evaluate(GOOD_OUTPUT).passed
    settings.QUALITY_PASS_SCORE = score + 1
    assert not evaluate(GOOD_OUTPUT).passed


def test_it_never_passes_an_output_without_substance_whatever_the_pass_score(fixed, settings):
    settings.QUALITY_PASS_SCORE = 0
    fixed(100, substantive=False)
    verdict = evaluate({"any": "thing"}, 100)
    assert (verdict.score, verdict.passed) == (100, False)


# Over the API


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({}, "output is not a non-empty JSON object (required)"),
        ({"summary": "ok"}, "output has no substantive content (required)"),
        ({"findings": [], "summary": ""}, "output has no substantive content (required)"),
        (
            {"summary": "x is assigned but never used."},
            "code_review: no findings list (required)",
        ),
    ],
    ids=["empty", "ok", "blank", "no-findings"],
)
def test_it_fails_a_task_whose_output_is_rejected(executing, rex, alice, output, reason):
    tid = executing["id"]
    task = hand_in_and_get(rex, tid, output, qualityScore=100)
    assert task["status"] == "failed"
    assert reason in task["qualityReasons"]
    assert task["qualityReasons"][-1] == "a required check failed: score 0"
    assert task["failureReason"] == "quality_gate"
    assert (task["qualityScore"], task["selfReportedQualityScore"]) == (0, 100)
    assert task["errorMessage"] == "quality score 0 is below 60"
    assert task["output"] == output
    assert (task["creditsHeld"], task["creditsCharged"], task["completedAt"]) == (0, None, None)

    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert rex.balance().available == 0
    assert platform_fees() == 0
    assert [kind for kind, _ in entries(alice)] == ["release", "hold", "grant"]

    events = alice.api.get(f"/api/v1/tasks/{tid}/events").json()
    assert [(e["type"], e["from"], e["to"], e["actor"]) for e in events[-2:]] == [
        ("complete", "executing", "quality_check", f"agent:{rex.id}"),
        ("reject", "quality_check", "failed", "system"),
    ]
    assert events[-1]["data"]["score"] == 0
    assert events[-1]["data"]["passScore"] == 60
    assert events[-1]["data"]["reasons"] == task["qualityReasons"]


def test_it_refuses_feedback_on_a_task_the_quality_gate_failed(executing, rex, alice):
    tid = executing["id"]
    assert hand_in(rex, tid, {}).status_code == 200
    response = alice.api.post(f"/api/v1/tasks/{tid}/feedback", {"feedback": "down"})
    assert response.status_code == 409
    assert alice.balance().available == 100_000


@pytest.mark.parametrize(("pass_score", "status"), [(86, "completed"), (87, "failed")])
def test_it_applies_the_pass_score_setting(executing, rex, alice, settings, pass_score, status):
    settings.QUALITY_PASS_SCORE = pass_score
    task = hand_in_and_get(rex, executing["id"])  # the heuristic gives it 86
    assert (task["status"], task["qualityScore"]) == (status, 86)
    held_back = 97_500 if status == "completed" else 100_000
    assert (alice.balance().available, alice.balance().held) == (held_back, 0)
    if status == "failed":
        assert task["failureReason"] == "quality_gate"
        assert task["errorMessage"] == "quality score 86 is below 87"


def test_it_uses_the_configured_evaluator(fixed, executing, rex, alice):
    fixed(95)
    tid = executing["id"]
    # The heuristic would fail this output; the configured evaluator decides.
    task = hand_in_and_get(rex, tid, {"ok": "y"})
    assert (task["status"], task["qualityScore"], task["creditsCharged"]) == ("completed", 95, 2500)
    assert task["qualityReasons"] == ["fixed by the test"]
    assert (alice.balance().available, rex.balance().available) == (97_500, 2250)
    passed = Task.objects.get(pk=tid).events.get(type="pass")
    assert passed.data == {"score": 95, "passScore": 60, "reasons": ["fixed by the test"]}


def test_it_fails_the_task_when_the_configured_evaluator_says_so(fixed, executing, rex, alice):
    fixed(20)
    task = hand_in_and_get(rex, executing["id"])
    assert (task["status"], task["failureReason"], task["qualityScore"]) == (
        "failed",
        "quality_gate",
        20,
    )
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)


@pytest.mark.parametrize(
    ("reported", "score", "status"), [(100, 60, "completed"), (0, 40, "failed")]
)
def test_it_blends_the_reported_score_into_the_task(fixed, executing, rex, reported, score, status):
    fixed(50)
    task = hand_in_and_get(rex, executing["id"], qualityScore=reported)
    assert (task["status"], task["qualityScore"], task["selfReportedQualityScore"]) == (
        status,
        score,
        reported,
    )


def test_it_settles_a_task_whose_output_is_deeply_nested(executing, rex, alice):
    tid = executing["id"]
    depth = 500
    raw = (
        '{"output": {"summary": '
        + "[" * depth
        + '"a finding that is nested very deep"'
        + "]" * depth
        + '}, "executionTimeMs": 5}'
    )
    response = rex.api.post(f"/api/v1/tasks/{tid}/complete", raw=raw)
    assert response.status_code == 200
    assert Task.objects.get(pk=tid).status in ("completed", "failed")
    assert alice.balance().held == 0
