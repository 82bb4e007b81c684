"""Settings for the test suite: Celery jobs run eagerly whatever REDIS_URL says."""

import os

os.environ.setdefault("SECRET_KEY", "city-test-key-" + "x" * 40)

from city.settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SANDBOX_ROOT = VAR_DIR / "test-sandboxes"  # noqa: F405
# Whatever the test process publishes to the live stream stays off a real deployment's channel
# (tests that start servers give each run a channel of its own).
STREAM_REDIS_CHANNEL = "city:test:stream"
