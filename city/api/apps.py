from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP plumbing every app uses: errors, idempotency, pagination, throttling, parsing."""

    name = "city.api"
    label = "api"
    verbose_name = "API"

    def ready(self) -> None:
        # Registers the OpenAPI extensions before any schema is generated.
        from city.api import schema  # noqa: F401
