"""The Celery app: jobs live in each app's jobs.py (``tasks`` is an app name here)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")

app = Celery("city")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["city.api", "credits", "tasks", "disputes"], related_name="jobs")
