"""The dispute services' domain errors, each deriving from its contract type."""

from __future__ import annotations

from city.api.errors import Conflict, Forbidden, Invalid, NotFound


class DisputeNotFound(NotFound):
    code = "dispute_not_found"

    def __init__(self, dispute_id: str):
        super().__init__(f"No such dispute: {dispute_id}")


class DisputeAlreadyOpen(Conflict):
    code = "dispute_already_open"

    def __init__(self, dispute_id: str):
        super().__init__(f"This task already has an open dispute: {dispute_id}.")


class DisputeWindowClosed(Conflict):
    code = "dispute_window_closed"


class TaskAlreadyRefunded(Conflict):
    code = "task_refunded"

    def __init__(self):
        super().__init__("The task's charge was already refunded in full.")


class DisputeClosed(Conflict):
    """The dispute's status does not allow the step; the code names the status."""

    def __init__(self, dispute, action: str):
        super().__init__(
            f"Cannot {action} a dispute in status {dispute.status}.",
            code=f"dispute_{dispute.status}",
        )


class NotReviewer(Forbidden):
    code = "not_reviewer"

    def __init__(self):
        super().__init__("Only a reviewer (review_dispute permission) may settle disputes.")


class DecisionNoteRequired(Invalid):
    code = "decision_note_required"

    def __init__(self):
        super().__init__("A rejection needs a note for the caller.", param="note")
