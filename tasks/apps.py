from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"

    def ready(self) -> None:
        from tasks import events, jobs, stream

        # The stream first: a group of events goes out before the jobs it starts record more
        # (eager Celery runs them inside the hook).
        events.subscribe(stream.publish)
        events.subscribe(jobs.enqueue_after)
