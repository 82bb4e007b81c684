"""The task and its event as the API shows them (camelCase, money in cents)."""

from __future__ import annotations

from tasks.models import Task, TaskEvent


def task_out(task: Task) -> dict:
    return {
        "id": task.pk,
        "taskType": task.task_type,
        "status": task.status,
        "input": task.input,
        "output": task.output,
        "maxBudget": task.max_budget,
        "creditsHeld": task.credits_held,
        "creditsCharged": task.credits_charged,
        "creditsRefunded": task.credits_refunded,
        "agentId": task.agent_id,
        "parentTaskId": task.parent_id,
        "sandboxId": task.sandbox_id or None,
        "qualityScore": task.quality_score,
        "selfReportedQualityScore": task.self_reported_quality_score,
        "executionTimeMs": task.execution_time_ms,
        "failureReason": task.failure_reason or None,
        "errorMessage": task.error_message or None,
        "feedback": task.feedback or None,
        "feedbackRefundDeadline": task.feedback_refund_deadline,
        "createdAt": task.created_at,
        "updatedAt": task.updated_at,
        "startedAt": task.started_at,
        "completedAt": task.completed_at,
    }


def event_out(event: TaskEvent) -> dict:
    return {
        "id": event.pk,
        "type": event.type,
        "from": event.from_status or None,
        "to": event.to_status or None,
        "actor": event.actor,
        "data": event.data,
        "createdAt": event.created_at,
    }
