"""What rendering a task costs: City's ResponseSerializer against a hand-written dict builder
(the baseline) and against DRF's own rendering of the same declaration, in the same run.

No database: the task is an unsaved model instance with every field filled, as a GET sees it.
Prints one line per renderer and a final line with the ratio to the baseline:

    render: ResponseSerializer 1.9x the dict baseline (DRF's stock path 12.3x)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")
os.environ.setdefault("SECRET_KEY", "bench-render-" + "x" * 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000, help="renders per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings per renderer")
    args = parser.parse_args()

    import django

    django.setup()
    from rest_framework import serializers

    from tasks.models import Task
    from tasks.serializers import TaskSerializer

    now = datetime.now(UTC)
    task = Task(
        id="k3j9x0q1w2e3r4t5y6u7i8o9p",
        task_type="code_review",
        input={"description": "Review this snippet", "code": "x = 1\n" * 20},
        output={"findings": [{"line": 1, "message": "unused"}], "summary": "One finding."},
        max_budget=5000,
        price=2500,
        agent_id="ag_k3j9x0q1w2e3r4t5y6u7i8o9",
        credits_held=0,
        credits_charged=2500,
        quality_score=84,
        quality_reasons=["2 substantive fields"],
        self_reported_quality_score=90,
        execution_time_ms=1200,
        created_at=now,
        updated_at=now,
        started_at=now,
        completed_at=now,
    )
    task.__dict__["status"] = "completed"  # the protected FSM field, set as a load from the db

    def by_hand(t: Task) -> dict:
        return {
            "id": t.pk,
            "taskType": t.task_type,
            "status": t.status,
            "input": t.input,
            "output": t.output,
            "maxBudget": t.max_budget,
            "creditsHeld": t.credits_held,
            "creditsCharged": t.credits_charged,
            "creditsRefunded": t.credits_refunded,
            "agentId": t.agent_id,
            "parentTaskId": t.parent_id,
            "sandboxId": t.sandbox_id or None,
            "qualityScore": t.quality_score,
            "qualityReasons": t.quality_reasons,
            "selfReportedQualityScore": t.self_reported_quality_score,
            "executionTimeMs": t.execution_time_ms,
            "failureReason": t.failure_reason or None,
            "errorMessage": t.error_message or None,
            "feedback": t.feedback or None,
            "feedbackRefundDeadline": t.feedback_refund_deadline,
            "createdAt": t.created_at,
            "updatedAt": t.updated_at,
            "startedAt": t.started_at,
            "completedAt": t.completed_at,
        }

    def drf_stock(t: Task) -> dict:
        # DRF's own path for the same declaration: a new serializer, its fields deep-copied.
        return serializers.Serializer.to_representation(TaskSerializer(), t)

    assert by_hand(task).keys() == TaskSerializer.render(task).keys()
    renderers = {
        "dict baseline": by_hand,
        "ResponseSerializer": TaskSerializer.render,
        "DRF's stock path": drf_stock,
    }
    per_call = {}
    for name, render in renderers.items():
        timings = timeit.repeat(lambda r=render: r(task), number=args.number, repeat=args.repeat)
        per_call[name] = statistics.median(timings) / args.number
        print(f"{name:>20}: {per_call[name] * 1e6:8.1f} µs per task")
    base = per_call["dict baseline"]
    ours, stock = per_call["ResponseSerializer"] / base, per_call["DRF's stock path"] / base
    print(
        f"render: ResponseSerializer {ours:.1f}x the dict baseline (DRF's stock path {stock:.1f}x)"
    )


if __name__ == "__main__":
    main()
