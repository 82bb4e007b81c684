"""The task services' domain errors. Each derives from its contract type in ``city.api.errors``,
so the API's one handler renders it; services never speak HTTP."""

from __future__ import annotations

from city.api.errors import Conflict, Forbidden, Invalid, NotFound


class TaskNotFound(NotFound):
    """No such task visible to the caller (whether or not it exists: no existence oracle)."""

    code = "task_not_found"

    def __init__(self, task_id: str):
        super().__init__(f"No such task: {task_id}")


class NotAssignee(Forbidden):
    code = "not_assignee"

    def __init__(self):
        super().__init__("Only the task's assigned agent may do this.")


class NotCaller(Forbidden):
    code = "not_caller"

    def __init__(self, action: str = "do this"):
        super().__init__(f"Only the task's caller may {action}.")


class InvalidTransition(Conflict):
    """The task's status does not allow the action; the code names the status."""

    def __init__(self, task, action: str):
        self.status = task.status
        super().__init__(
            f"Cannot {action} a task in status {task.status}.", code=f"task_{task.status}"
        )


class InvalidHire(Invalid):
    """A direct hire of an agent that cannot take the task (``param: agentId``)."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message, code=code, param="agentId")


class UnknownTaskType(Invalid):
    code = "unknown_task_type"

    def __init__(self, task_type: str):
        super().__init__(f"No active agent offers task type {task_type!r}.", param="taskType")


class InvalidParentTask(Invalid):
    def __init__(self, message: str, *, code: str):
        super().__init__(message, code=code, param="parentTaskId")


class ParentNotExecuting(Conflict):
    code = "parent_task_not_executing"


class SandboxNotLive(Invalid):
    code = "sandbox_not_live"

    def __init__(self, sandbox_id: str):
        super().__init__(f"{sandbox_id} is not this task's live sandbox.", param="sandboxId")


class SandboxNotFound(NotFound):
    code = "sandbox_not_found"


class SandboxAlreadyLive(Conflict):
    code = "sandbox_already_live"

    def __init__(self):
        super().__init__("This task already has a live sandbox.")


class AgentAtCapacity(Conflict):
    code = "agent_at_capacity"


class FeedbackAlreadyGiven(Conflict):
    code = "feedback_already_given"

    def __init__(self):
        super().__init__("Feedback was already given for this task.")
