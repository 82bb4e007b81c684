from django.apps import AppConfig


class DisputesConfig(AppConfig):
    name = "disputes"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from city.identity import roles

        # The staff groups again after every migrate or flush (a test database's flush empties
        # them), once, after this app's permissions, the last the groups need, exist.
        post_migrate.connect(roles.ensure_groups, sender=self, dispatch_uid="ensure_groups")
