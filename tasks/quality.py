"""The quality gate: an evaluator scores a task's output 0–100 and says why; at or above
QUALITY_PASS_SCORE it passes. The agent's self-reported score weighs at most 20%.

The built-in ``HeuristicEvaluator`` runs small named rules (docs/quality.md), each adding points
or taking them away and giving one human-readable reason:

- required checks: the output is a non-empty JSON object with substantive content, and it
  carries what its task type asks for (a ``code_review`` names findings with lines in the code
  it was given; a ``bug_fix`` carries a patch or diff). Failing one fails the output with a score
  of 0, whatever else it does well and whatever the agent reports;
- points: substance (how many substantive fields), detail (how much text), meeting the type's
  expectations, and the execution time's plausibility.

Everything is deterministic and local: no network, no clock but the task's own figures.
Evaluators plug in through ``QUALITY_EVALUATOR`` (a dotted path to a class with
``score(task) -> Verdict``); ``evaluate`` blends the self-report in whichever runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

SELF_REPORT_WEIGHT = 0.2

SUBSTANCE_BASE = 50  # for an output with at least one substantive field
SUBSTANCE_PER_FIELD = 12  # for each substantive top-level field...
SUBSTANCE_MAX_FIELDS = 3  # ...counting at most three
DETAIL_CHARS_PER_POINT = 25  # one point per 25 characters of text...
DETAIL_MAX = 14  # ...at most 14
TYPE_EXPECTATIONS_MET = 10  # an output meeting its task type's expectations
IMPLAUSIBLE_TIME = -20  # an execution time too short for the type, or past the timeout

# Below these execution times (in ms) the work is implausibly fast for its type.
MIN_EXECUTION_MS = {"code_review": 100, "bug_fix": 200}
DEFAULT_MIN_EXECUTION_MS = 10

REQUIRED_FAILED = "a required check failed: score 0"


@dataclass(frozen=True)
class Verdict:
    score: int
    substantive: bool  # False when a required check failed: the output fails whatever its score
    reasons: list[str] = field(default_factory=list)  # human-readable, shown as qualityReasons

    @property
    def passed(self) -> bool:
        return self.substantive and self.score >= settings.QUALITY_PASS_SCORE


@dataclass(frozen=True)
class Check:
    """What one rule found: the points it adds (or takes away) and a reason a reviewer can read.

    ``fails`` marks a required check the output did not meet: the output fails with a score of 0.
    """

    reason: str
    points: int = 0
    fails: bool = False


def _points(reason: str, points: int) -> Check:
    return Check(f"{reason} ({points:+d})", points)


def _required(reason: str) -> Check:
    return Check(f"{reason} (required)", fails=True)


def _text_of(value) -> tuple[int, int]:
    """(characters of real text, count of non-empty leaves) in a JSON value.

    Walks with an explicit stack: an output nested thousands deep is valid JSON and must not
    exhaust Python's recursion limit.
    """
    chars = leaves = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            text = item.strip()
            chars += len(text)
            leaves += 1 if text else 0
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            chars += len(str(item))
            leaves += 1
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return chars, leaves


def _substantive(value) -> bool:
    """Real content: 10 characters of text, or 4 spread over two or more values."""
    chars, leaves = _text_of(value)
    return chars >= 10 or (leaves >= 2 and chars >= 4)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# Generic rules: every task type


def json_object(task) -> Check:
    """Required: the output is a JSON object with at least one key."""
    if isinstance(task.output, dict) and task.output:
        return _points("output is a non-empty JSON object", 0)
    return _required("output is not a non-empty JSON object")


def substance(task) -> Check:
    """Required: at least one top-level field has substantive content. Points for each, up to 3."""
    fields = sum(1 for value in task.output.values() if _substantive(value))
    if not fields:
        return _required("output has no substantive content")
    points = SUBSTANCE_BASE + SUBSTANCE_PER_FIELD * min(fields, SUBSTANCE_MAX_FIELDS)
    return _points(_plural(fields, "substantive field"), points)


def detail(task) -> Check:
    """Points for the amount of text the output carries: one per 25 characters, at most 14."""
    chars, _ = _text_of(task.output)
    return _points(
        f"{_plural(chars, 'character')} of text", min(DETAIL_MAX, chars // DETAIL_CHARS_PER_POINT)
    )


def execution_time(task) -> Check:
    """Points off for an execution time that cannot be true: shorter than the type's floor, or
    longer than the execution timeout (the task would have timed out)."""
    ms, kind = task.execution_time_ms, task.task_type
    if ms is None:
        return _points("execution time not reported", 0)
    floor = MIN_EXECUTION_MS.get(kind, DEFAULT_MIN_EXECUTION_MS)
    if ms < floor:
        return _points(
            f"execution time {ms} ms is implausibly short for a {kind} (under {floor} ms)",
            IMPLAUSIBLE_TIME,
        )
    timeout = settings.EXECUTION_TIMEOUT_SECONDS
    if ms > timeout * 1000:
        return _points(
            f"execution time {ms} ms is longer than the execution timeout of {timeout} s",
            IMPLAUSIBLE_TIME,
        )
    return _points(f"execution time {ms} ms is plausible for a {kind}", 0)


# Rules for a task type


def _line_count(text) -> int | None:
    if not isinstance(text, str) or not text.strip():
        return None
    return len(text.splitlines())


def _reviewed_lines(task_input, finding: dict) -> int | None:
    """How many lines the code a finding points into has, when the task's input holds it.

    A finding naming a ``file`` points into that input file; one naming none into ``input.code``,
    or into the only input file when there is no code. Anything else (a file of the repo that
    was not handed in) cannot be checked: None.
    """
    if not isinstance(task_input, dict):
        return None
    files = task_input.get("files")
    files = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    name = finding.get("file")
    if isinstance(name, str) and name:
        content = next((f.get("content") for f in files if f.get("name") == name), None)
        return _line_count(content)
    lines = _line_count(task_input.get("code"))
    if lines is None and len(files) == 1:
        lines = _line_count(files[0].get("content"))
    return lines


def _finding_problem(finding) -> str | None:
    if not isinstance(finding, dict):
        return "is not an object"
    line = finding.get("line")
    if isinstance(line, bool) or not isinstance(line, int):
        return "has no line"
    if line < 1:
        return f"names line {line}; lines start at 1"
    message = finding.get("message")
    if not isinstance(message, str) or not _substantive(message):
        return "has no message of 10 characters or more"
    return None


def code_review_findings(task) -> Check:
    """Required for a ``code_review``: ``findings`` is a non-empty list, each finding an object
    with a ``line`` (an integer from 1) and a ``message`` (10 characters or more)."""
    findings = task.output.get("findings")
    if not isinstance(findings, list):
        return _required("code_review: no findings list")
    if not findings:
        return _required("code_review: no findings")
    problems = [(n, p) for n, f in enumerate(findings, 1) if (p := _finding_problem(f))]
    if problems:
        n, problem = problems[0]
        bad = f"{len(problems)} of {_plural(len(findings), 'finding')} incomplete"
        return _required(f"code_review: {bad}; finding {n} {problem}")
    return _points(
        f"code_review: {_plural(len(findings), 'finding')}, each with a line and a message",
        TYPE_EXPECTATIONS_MET,
    )


def code_review_lines(task) -> Check:
    """Required for a ``code_review``: a finding's line exists in the code it points into, where
    the task's input holds that code."""
    findings = task.output.get("findings")
    if not isinstance(findings, list):
        return _points("code_review: no lines to check", 0)
    checked = 0
    for n, finding in enumerate(findings, 1):
        if not isinstance(finding, dict) or isinstance(finding.get("line"), bool):
            continue
        line, lines = finding.get("line"), _reviewed_lines(task.input, finding)
        if not isinstance(line, int) or lines is None:
            continue
        if line > lines:
            code = _plural(lines, "line")
            return _required(f"code_review: finding {n} names line {line}, but the code has {code}")
        checked += 1
    if not checked:
        return _points("code_review: no line could be checked against the input", 0)
    return _points(f"code_review: {_plural(checked, 'line')} found in the code reviewed", 0)


def _changed_lines(patch: str) -> tuple[int, int]:
    added = removed = 0
    for line in patch.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def bug_fix_patch(task) -> Check:
    """Required for a ``bug_fix``: a ``patch`` or ``diff`` string that adds or removes at least
    one line (unified diff: lines starting with ``+`` or ``-``, headers aside)."""
    key = next(
        (k for k in ("patch", "diff") if isinstance(task.output.get(k), str) and task.output[k]),
        None,
    )
    if key is None:
        return _required("bug_fix: no patch or diff")
    added, removed = _changed_lines(task.output[key])
    if not added and not removed:
        return _required(f"bug_fix: the {key} adds or removes no line")
    changes = f"{key} adds {_plural(added, 'line')} and removes {removed}"
    return _points(f"bug_fix: {changes}", TYPE_EXPECTATIONS_MET)


Rule = Callable[[object], Check]


class HeuristicEvaluator:
    """Runs the generic rules, the task type's rules (none for a type it does not know), and the
    execution-time rule; the score is the sum of their points, from 0 to 100.

    Subclass it to change a policy: ``type_rules`` maps a task type to its rules.
    """

    type_rules: dict[str, tuple[Rule, ...]] = {
        "code_review": (code_review_findings, code_review_lines),
        "bug_fix": (bug_fix_patch,),
    }

    def score(self, task) -> Verdict:
        # The other rules read a substantive object: without one, nothing else is worth saying.
        for gate in (json_object, substance):
            check = gate(task)
            if check.fails:
                return Verdict(0, False, [check.reason, REQUIRED_FAILED])
        checks = [check, detail(task)]  # the substance check's; "is an object" goes unsaid
        type_rules = self.type_rules.get(task.task_type)
        if type_rules:
            checks.extend(rule(task) for rule in type_rules)
        else:
            checks.append(_points(f"{task.task_type}: no rules for this type, generic only", 0))
        checks.append(execution_time(task))
        reasons = [check.reason for check in checks]
        if any(check.fails for check in checks):
            return Verdict(0, False, [*reasons, REQUIRED_FAILED])
        score = max(0, min(100, sum(check.points for check in checks)))
        return Verdict(score, True, reasons)


def evaluate(task) -> Verdict:
    """The configured evaluator's verdict, with the agent's self-reported score blended in at
    20% when the output met every required check (a failed one is never lifted)."""
    verdict = import_string(settings.QUALITY_EVALUATOR)().score(task)
    own = task.self_reported_quality_score
    if own is None or not verdict.substantive:
        return verdict
    own = max(0, min(100, own))
    blended = round((1 - SELF_REPORT_WEIGHT) * verdict.score + SELF_REPORT_WEIGHT * own)
    reasons = [
        *verdict.reasons,
        f"self-reported score {own} weighs {SELF_REPORT_WEIGHT:.0%}: {verdict.score} -> {blended}"
        f" ({blended - verdict.score:+d})",
    ]
    return Verdict(blended, verdict.substantive, reasons)
