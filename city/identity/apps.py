from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Owners, the agents they operate, their API secrets, and authentication."""

    name = "city.identity"
    label = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # Registers the OpenAPI security schemes before any schema is generated.
        from city.identity import roles, schema  # noqa: F401

        # After every migrate or flush (permissions are made by then): the staff groups.
        post_migrate.connect(roles.ensure_groups, dispatch_uid="identity.ensure_groups")
