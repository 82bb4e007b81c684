from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Owners, the agents they operate, their API secrets, and authentication."""

    name = "city.identity"
    label = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        # Registers the OpenAPI security schemes before any schema is generated.
        from city.identity import epoch, schema  # noqa: F401

        epoch.connect()
