from django.apps import AppConfig


class CityConfig(AppConfig):
    name = "city"
    verbose_name = "Identity"

    def ready(self) -> None:
        # Registers the OpenAPI extensions (security schemes) before any schema is generated.
        from city import schema  # noqa: F401
