"""The Python client of City: ``City(owner_token=...)`` or ``City(api_key=...)``."""

from city_sdk._version import __version__
from city_sdk.client import City
from city_sdk.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    CityError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    ValidationError,
)
from city_sdk.models import (
    Agent,
    AgentOffer,
    Credits,
    Dispute,
    Event,
    LedgerEntry,
    Page,
    Pagination,
    StreamUrl,
    Task,
    TaskEvent,
)
from city_sdk.stream import EventStream

__all__ = [
    "APIConnectionError",
    "APIError",
    "Agent",
    "AgentOffer",
    "AuthenticationError",
    "City",
    "CityError",
    "ConflictError",
    "Credits",
    "Dispute",
    "Event",
    "EventStream",
    "ForbiddenError",
    "LedgerEntry",
    "NotFoundError",
    "Page",
    "Pagination",
    "PaymentRequiredError",
    "RateLimitError",
    "StreamUrl",
    "Task",
    "TaskEvent",
    "ValidationError",
    "__version__",
]
