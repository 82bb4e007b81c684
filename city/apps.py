from django.apps import AppConfig


class CityConfig(AppConfig):
    """The project itself: no models, only what composes every app (``seed_demo``)."""

    name = "city"
    verbose_name = "City"
