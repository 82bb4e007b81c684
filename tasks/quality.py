"""The quality gate: an evaluator scores a task's output 0–100; at or above
QUALITY_PASS_SCORE it passes. The agent's self-reported score weighs at most 20%.

Evaluators plug in through ``QUALITY_EVALUATOR`` (a dotted path to a class with
``score(task) -> Verdict``); the built-in one is a heuristic that needs no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

SELF_REPORT_WEIGHT = 0.2


@dataclass(frozen=True)
class Verdict:
    score: int
    substantive: bool
    reasons: list[str] = field(default_factory=list)  # human-readable, shown as qualityReasons

    @property
    def passed(self) -> bool:
        return self.substantive and self.score >= settings.QUALITY_PASS_SCORE


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
    chars, leaves = _text_of(value)
    return chars >= 10 or (leaves >= 2 and chars >= 4)


class HeuristicEvaluator:
    """Scores what an output carries: substantive top-level fields and the text behind them.

    A non-object, ``{}``, or an object whose values are empty or trivial scores 0 and fails.
    """

    def score(self, task) -> Verdict:
        output = task.output
        if not isinstance(output, dict) or not output:
            return Verdict(0, False, ["output is not a non-empty JSON object"])
        fields = [key for key, value in output.items() if _substantive(value)]
        if not fields:
            return Verdict(0, False, ["output has no substantive content"])
        chars, _ = _text_of(output)
        score = 50 + 12 * min(len(fields), 3) + min(14, chars // 25)
        return Verdict(min(score, 100), True, [f"{len(fields)} substantive fields"])


def evaluate(task) -> Verdict:
    verdict = import_string(settings.QUALITY_EVALUATOR)().score(task)
    own = task.self_reported_quality_score
    if own is None or not verdict.substantive:
        return verdict
    blended = round((1 - SELF_REPORT_WEIGHT) * verdict.score + SELF_REPORT_WEIGHT * own)
    reasons = [
        *verdict.reasons,
        f"self-reported score {own} weighs {SELF_REPORT_WEIGHT:.0%}: {verdict.score} -> {blended}",
    ]
    return Verdict(blended, verdict.substantive, reasons)
