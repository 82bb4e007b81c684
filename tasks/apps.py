from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"

    def ready(self) -> None:
        from tasks import events, jobs

        events.subscribe(jobs.enqueue_after)
