"""The built-in evaluator's rules, each with an output that passes and one that fails; and the
examples of docs/quality.md, checked against what the evaluator says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from tasks import quality
from tasks.quality import (
    REQUIRED_FAILED,
    Check,
    HeuristicEvaluator,
    bug_fix_patch,
    code_review_findings,
    code_review_lines,
    detail,
    execution_time,
    json_object,
    substance,
)
from tests.actions import get_task, hand_in_and_get, start, submit
from tests.factories import GOOD_OUTPUT

SNIPPET = {
    "description": "Review add",
    "code": "def add(a, b):\n    total = a - b\n    return total\n",
}
THIN = {"findings": [{"line": 1, "message": "x is assigned but never used"}]}
PATCH = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-    return a - b\n+    return a + b\n"


def task(output, task_type="code_review", ms=1200, reported=None, task_input=None):
    return SimpleNamespace(
        task_type=task_type,
        input=task_input if task_input is not None else {"description": "Review this snippet"},
        output=output,
        execution_time_ms=ms,
        self_reported_quality_score=reported,
    )


def finding(line, message="subtracts where add() should add", **more) -> dict:
    return {"line": line, "message": message, **more}


def passes(check: Check, points: int, reason: str) -> None:
    assert (check.fails, check.points, check.reason) == (False, points, reason)


def fails(check: Check, reason: str) -> None:
    assert (check.fails, check.points, check.reason) == (True, 0, f"{reason} (required)")


# json_object


def test_json_object_passes_a_non_empty_object():
    assert not json_object(task({"summary": "x"})).fails


@pytest.mark.parametrize("output", [{}, [], [GOOD_OUTPUT], "a long enough string", 42, None])
def test_json_object_fails_anything_else(output):
    fails(json_object(task(output)), "output is not a non-empty JSON object")


# substance


@pytest.mark.parametrize(
    ("output", "reason", "points"),
    [
        ({"summary": "x" * 10}, "1 substantive field", 62),
        ({"findings": ["ab", "cd"]}, "1 substantive field", 62),  # 4 characters over two values
        (GOOD_OUTPUT, "2 substantive fields", 74),
        ({"a": "x" * 10, "b": "y" * 10, "c": "z" * 10}, "3 substantive fields", 86),
        ({f"k{i}": "x" * 10 for i in range(5)}, "5 substantive fields", 86),  # three count
    ],
)
def test_substance_passes_real_content_and_counts_at_most_three_fields(output, reason, points):
    passes(substance(task(output)), points, f"{reason} (+{points})")


@pytest.mark.parametrize(
    "output",
    [
        {"summary": ""},
        {"summary": "ok"},
        {"summary": "x" * 9},
        {"ok": True, "done": None},
        {"findings": [], "details": {}},
        {"a": "abcd", "b": "efgh"},  # each field trivial on its own
    ],
)
def test_substance_fails_an_object_without_real_content(output):
    fails(substance(task(output)), "output has no substantive content")


# detail


def test_detail_gives_a_point_per_25_characters():
    passes(detail(task(GOOD_OUTPUT)), 2, "59 characters of text (+2)")


def test_detail_gives_at_most_14():
    passes(detail(task({"summary": "x" * 5000})), 14, "5000 characters of text (+14)")


def test_detail_gives_nothing_under_25_characters():
    passes(detail(task({"summary": "x" * 24})), 0, "24 characters of text (+0)")


# code_review_findings


@pytest.mark.parametrize(
    ("findings", "reason"),
    [
        ([finding(1)], "1 finding"),
        ([finding(1), finding(3, file="b.py", severity="low")], "2 findings"),
    ],
)
def test_code_review_findings_passes_findings_with_lines_and_messages(findings, reason):
    check = code_review_findings(task({"findings": findings}))
    passes(check, 10, f"code_review: {reason}, each with a line and a message (+10)")


@pytest.mark.parametrize(
    ("findings", "reason"),
    [
        (None, "code_review: no findings list"),
        ("line 1: unused x", "code_review: no findings list"),
        ([], "code_review: no findings"),
        (["line 1: x is never used"], "1 of 1 finding incomplete; finding 1 is not an object"),
        ([{"message": "x is never used"}], "1 of 1 finding incomplete; finding 1 has no line"),
        ([finding("1")], "1 of 1 finding incomplete; finding 1 has no line"),
        ([finding(True)], "1 of 1 finding incomplete; finding 1 has no line"),
        ([finding(1.0)], "1 of 1 finding incomplete; finding 1 has no line"),
        ([finding(0)], "1 of 1 finding incomplete; finding 1 names line 0; lines start at 1"),
        (
            [finding(1), finding(2, message="bad"), {}],
            "2 of 3 findings incomplete; finding 2 has no message of 10 characters or more",
        ),
    ],
)
def test_code_review_findings_fails_findings_without_lines_or_messages(findings, reason):
    output = {"summary": "A summary of what was found.", "findings": findings}
    if findings is None:
        del output["findings"]
    check = code_review_findings(task(output))
    prefix = "" if reason.startswith("code_review: ") else "code_review: "
    fails(check, f"{prefix}{reason}")


# code_review_lines


@pytest.mark.parametrize(
    ("task_input", "findings", "reason"),
    [
        (SNIPPET, [finding(2), finding(3)], "code_review: 2 lines found in the code reviewed"),
        (
            {"description": "d", "files": [{"name": "a.py", "content": "a\nb\n"}]},
            [finding(2)],  # no file named, no input.code: the only file
            "code_review: 1 line found in the code reviewed",
        ),
        (
            {"description": "d", "code": "x\n", "files": [{"name": "a.py", "content": "a\nb\n"}]},
            [finding(2, file="a.py"), finding(1)],
            "code_review: 2 lines found in the code reviewed",
        ),
        (
            {"description": "d", "repo": "https://example.com/r.git", "code": "x\n"},
            [finding(90, file="src/other.py")],  # a file of the repo not handed in
            "code_review: no line could be checked against the input",
        ),
        (
            {"description": "d"},
            [finding(90)],
            "code_review: no line could be checked against the input",
        ),
    ],
)
def test_code_review_lines_passes_lines_in_the_code_given(task_input, findings, reason):
    passes(
        code_review_lines(task({"findings": findings}, task_input=task_input)), 0, f"{reason} (+0)"
    )


@pytest.mark.parametrize(
    ("task_input", "findings", "reason"),
    [
        (SNIPPET, [finding(2), finding(4)], "finding 2 names line 4, but the code has 3 lines"),
        (
            {"description": "d", "code": "x\n", "files": [{"name": "a.py", "content": "a\nb\n"}]},
            [finding(2)],  # no file named: input.code, one line
            "finding 1 names line 2, but the code has 1 line",
        ),
        (
            {"description": "d", "files": [{"name": "a.py", "content": "a\nb\n"}, {"name": "b"}]},
            [finding(3, file="a.py")],
            "finding 1 names line 3, but the code has 2 lines",
        ),
    ],
)
def test_code_review_lines_fails_a_line_past_the_end_of_the_code(task_input, findings, reason):
    fails(
        code_review_lines(task({"findings": findings}, task_input=task_input)),
        f"code_review: {reason}",
    )


# bug_fix_patch


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({"patch": PATCH}, "patch adds 1 line and removes 1"),
        ({"diff": "+import os\n+import sys\n"}, "diff adds 2 lines and removes 0"),
        ({"patch": "", "diff": "-print(x)\n"}, "diff adds 0 lines and removes 1"),
    ],
)
def test_bug_fix_patch_passes_a_patch_that_changes_lines(output, reason):
    passes(bug_fix_patch(task(output, task_type="bug_fix")), 10, f"bug_fix: {reason} (+10)")


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({"summary": "Fixed add(): it now adds."}, "bug_fix: no patch or diff"),
        ({"patch": ""}, "bug_fix: no patch or diff"),
        ({"patch": ["-a", "+b"]}, "bug_fix: no patch or diff"),
        ({"patch": "Changed the minus to a plus."}, "bug_fix: the patch adds or removes no line"),
        ({"diff": "--- a/calc.py\n+++ b/calc.py\n"}, "bug_fix: the diff adds or removes no line"),
    ],
)
def test_bug_fix_patch_fails_without_a_patch_that_changes_lines(output, reason):
    fails(bug_fix_patch(task(output, task_type="bug_fix")), reason)


# Other types: the generic rules alone


def test_a_type_without_rules_is_judged_by_the_generic_rules_alone():
    verdict = HeuristicEvaluator().score(task({"summary": "x is never used."}, "translation"))
    assert (verdict.score, verdict.passed) == (62, True)
    assert verdict.reasons == [
        "1 substantive field (+62)",
        "16 characters of text (+0)",
        "translation: no rules for this type, generic only (+0)",
        "execution time 1200 ms is plausible for a translation (+0)",
    ]


def test_a_type_with_rules_fails_the_same_output_that_misses_them():
    verdict = HeuristicEvaluator().score(task({"summary": "x is never used."}, "code_review"))
    assert (verdict.score, verdict.substantive, verdict.passed) == (0, False, False)
    assert "code_review: no findings list (required)" in verdict.reasons
    assert verdict.reasons[-1] == REQUIRED_FAILED


# execution_time


@pytest.mark.parametrize(
    ("task_type", "ms"),
    [("code_review", 100), ("code_review", 1200), ("bug_fix", 200), ("translation", 10)],
)
def test_execution_time_passes_a_plausible_time(task_type, ms):
    check = execution_time(task({}, task_type, ms))
    passes(check, 0, f"execution time {ms} ms is plausible for a {task_type} (+0)")


def test_execution_time_passes_the_execution_timeout_itself(settings):
    settings.EXECUTION_TIMEOUT_SECONDS = 60
    assert execution_time(task({}, ms=60_000)).points == 0


@pytest.mark.parametrize(
    ("task_type", "ms", "floor"),
    [("code_review", 99, 100), ("code_review", 0, 100), ("bug_fix", 199, 200), ("poetry", 9, 10)],
)
def test_execution_time_takes_20_off_a_time_too_short_for_the_type(task_type, ms, floor):
    check = execution_time(task({}, task_type, ms))
    reason = f"execution time {ms} ms is implausibly short for a {task_type} (under {floor} ms)"
    passes(check, -20, f"{reason} (-20)")


def test_execution_time_takes_20_off_a_time_past_the_execution_timeout(settings):
    settings.EXECUTION_TIMEOUT_SECONDS = 60
    check = execution_time(task({}, ms=60_001))
    reason = "execution time 60001 ms is longer than the execution timeout of 60 s"
    passes(check, -20, f"{reason} (-20)")


def test_execution_time_says_so_when_none_was_reported():
    passes(execution_time(task({}, ms=None)), 0, "execution time not reported (+0)")


def test_an_implausible_time_fails_a_thin_output_but_not_a_rich_one():
    assert HeuristicEvaluator().score(task(THIN, ms=3)).score == 53
    rich = HeuristicEvaluator().score(task(GOOD_OUTPUT, ms=3))
    assert (rich.score, rich.passed) == (66, True)


# The self-reported score


def test_the_self_report_moves_a_passing_score_by_at_most_20_percent():
    verdict = quality.evaluate(task(THIN, reported=100))
    assert (verdict.score, verdict.passed) == (78, True)  # 0.8 x 73 + 0.2 x 100
    assert verdict.reasons[-1] == "self-reported score 100 weighs 20%: 73 -> 78 (+5)"
    assert quality.evaluate(task(THIN, reported=0)).score == 58  # and can sink it


@pytest.mark.parametrize(
    "output",
    [
        {},
        {"summary": "ok"},
        {"summary": "Fixed add(): it subtracted, it now adds."},  # a bug_fix without a patch
        {"patch": "Changed the minus to a plus.", "summary": "Fixed add(): it now adds."},
    ],
)
def test_the_self_report_never_lifts_a_failed_required_check(settings, output):
    settings.QUALITY_PASS_SCORE = 0
    verdict = quality.evaluate(task(output, "bug_fix", reported=100))
    assert (verdict.score, verdict.passed) == (0, False)
    assert not any(reason.startswith("self-reported") for reason in verdict.reasons)


# The score stays within 0..100


def test_the_score_is_never_above_100():
    output = {f"k{i}": "x" * 500 for i in range(5)} | {"findings": [finding(1, "x" * 500)]}
    verdict = HeuristicEvaluator().score(task(output))
    assert verdict.score == 100  # 86 + 14 + 10, kept at 100


# Over the API: a bug_fix


@pytest.fixture
def bug_fix(alice, rex):
    tid = submit(alice, agentId=rex.id, taskType="bug_fix", maxBudget=5000)["id"]
    start(rex, tid)
    return tid


def test_it_completes_a_bug_fix_that_carries_a_patch(bug_fix, rex, alice):
    output = {"patch": PATCH, "summary": "add() subtracted; it now adds."}
    task_ = hand_in_and_get(rex, bug_fix, output)
    assert (task_["status"], task_["qualityScore"], task_["creditsCharged"]) == (
        "completed",
        88,
        4000,
    )
    assert "bug_fix: patch adds 1 line and removes 1 (+10)" in task_["qualityReasons"]


def test_it_fails_a_bug_fix_that_carries_no_patch(bug_fix, rex, alice):
    task_ = hand_in_and_get(rex, bug_fix, qualityScore=100)  # the standard code review
    assert (task_["status"], task_["failureReason"], task_["qualityScore"]) == (
        "failed",
        "quality_gate",
        0,
    )
    assert task_["qualityReasons"] == [
        "2 substantive fields (+74)",
        "59 characters of text (+2)",
        "bug_fix: no patch or diff (required)",
        "execution time 1200 ms is plausible for a bug_fix (+0)",
        REQUIRED_FAILED,
    ]
    assert get_task(alice, bug_fix)["qualityReasons"] == task_["qualityReasons"]
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)


# docs/quality.md: every example says what the evaluator says

DOC = Path(__file__).resolve().parents[2] / "docs" / "quality.md"
EXAMPLE = re.compile(
    r"^\*\*(?P<verdict>Passes|Fails)\*\*, score (?P<score>\d+)(?: \((?P<note>[^\n]*)\))?:\n\n"
    r"```json\n(?P<task>.*?)\n```\n"
    r"(?:\nwith these `qualityReasons`:\n\n```json\n(?P<reasons>.*?)\n```\n)?",
    re.MULTILINE | re.DOTALL,
)


def doc_examples() -> list:
    examples = list(EXAMPLE.finditer(DOC.read_text()))
    return [pytest.param(m, id=f"{m['verdict']}-{m.start()}") for m in examples]


def test_the_doc_shows_a_passing_and_a_failing_example_for_each_rule():
    text = DOC.read_text()
    sections = re.split(r"^### ", text.split("## The rules, each with", 1)[1], flags=re.M)[1:]
    rules = {"json_object", "substance", "detail", "code_review_findings", "code_review_lines"}
    rules |= {"bug_fix_patch", "execution_time"}
    titles = set()
    for section in sections:
        title, _, body = section.partition("\n")
        titles.add(title.strip("`"))
        verdicts = {m["verdict"] for m in EXAMPLE.finditer(body)}
        assert verdicts == {"Passes", "Fails"}, title
    assert rules <= titles
    assert len(sections) == len(rules) + 2  # and other types, and the self-report


@pytest.mark.parametrize("example", doc_examples())
def test_the_docs_example_gets_the_verdict_it_shows(example):
    given = json.loads(example["task"])
    verdict = quality.evaluate(
        task(
            given["output"],
            given["taskType"],
            given["executionTimeMs"],
            given.get("qualityScore"),
            given.get("input"),
        )
    )
    assert (verdict.score, verdict.passed) == (
        int(example["score"]),
        example["verdict"] == "Passes",
    ), verdict.reasons
    if example["reasons"]:
        assert verdict.reasons == json.loads(example["reasons"])
    for quoted in re.findall(r"`([^`]+)`", example["note"] or ""):
        if " " in quoted:  # a reason, quoted without its effect
            assert any(reason.startswith(quoted + " (") for reason in verdict.reasons), quoted
