"""City's settings, read from the environment (12-factor) with the names and defaults of API.md.

With nothing set, City runs on its embedded defaults: a SQLite file, Celery in eager mode
(jobs run in-process), local sandboxes and an in-process event stream.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")


# Off unless asked for (``make run`` asks); with it off, SECRET_KEY must be set.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "city-insecure-development-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = [
    h for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h
]
VAR_DIR = Path(env_str("CITY_VAR_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "city",
    "city.api",
    "city.identity",
    "credits",
    "tasks",
    "disputes",
]

MIDDLEWARE = [
    "city.api.middleware.ApiHostMiddleware",
    "city.api.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, the dashboard's) are served by the app itself in every mode.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # request.htmx: a dashboard page answers an htmx request with the fragment it asked for.
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "city.urls"
# Under ASGI, the threads each web process runs requests' synchronous code on, kept from one
# request to the next (city/request_threads.py); each holds at most one pooled connection.
REQUEST_THREADS = env_int("REQUEST_THREADS", 4)
WSGI_APPLICATION = "city.wsgi.application"
ASGI_APPLICATION = "city.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The database: a SQLite file unless DATABASE_URL names another. Under ASGI, PostgreSQL goes
# through psycopg's connection pool: CONN_MAX_AGE there opened a connection per request thread
# until PostgreSQL refused more.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN", 2),
        "max_size": env_int("DATABASE_POOL_MAX", 10),
        "timeout": 10,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait for each other instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Checked where a person chooses a password (sign-up, password change), not by the commands.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Found in the apps at run time, so no collectstatic step is needed before serving; a deploy
# may still run collectstatic, and WhiteNoise then serves STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
# WhiteNoise serves a file as a sync iterator; under ASGI Django warns at every file that it
# consumes it in a thread, which it does correctly. The files are small and few.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at every start without it
WHITENOISE_AUTOREFRESH = DEBUG

# HTTPS: on behind TLS in production. Django's deployment checks (check --deploy) pass with
# DEBUG off, HTTPS on and a strong SECRET_KEY.
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Asking browsers to preload HSTS is a commitment for the domain, the operator's to
        # make (HSTS_PRELOAD=true), not a default's.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
# The dashboard's own login; the admin keeps its (throttled) one.
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:login"

REDIS_URL = env_str("REDIS_URL")

# Caches hold rate-limit counters; they must be shared between processes once there are several.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: eager (in-process) unless REDIS_URL names a broker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker keeps its database connections across jobs: Celery's Django fixup otherwise closes
# them (and, in a prefork child, the whole pool) before and after every job, so each job opened
# new sessions (docs/performance.md, "lifecycle"). Recycled every 1,000 jobs; one that finds a
# dead connection fails, and acks_late and the sweeps run it again.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BEAT_SCHEDULE = {
    "tasks-sweep-timeouts": {"task": "tasks.jobs.sweep_timeouts", "schedule": 30.0},
    "api-purge-idempotency-keys": {
        "task": "city.api.jobs.purge_idempotency_keys",
        "schedule": 3600.0,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "city.identity.authentication.SecretAuthentication",
        "city.identity.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "city.api.permissions.IsPrincipal",
        "city.api.permissions.MethodAllowed",
        "city.identity.permissions.KindAllowed",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["city.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["city.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["city.api.renderers.OrjsonRenderer"],
    "EXCEPTION_HANDLER": "city.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "City API",
    "DESCRIPTION": "Hire AI agents for work, paid from a credit ledger.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "city.api.schema.document_request_too_large",
        "city.api.schema.link_created_objects",
    ],
    # Swagger UI at /api/docs/, its assets served by City itself (drf-spectacular-sidecar).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Enums shared by several fields get one component each, named for what they are.
    "ENUM_NAME_OVERRIDES": {
        "TaskStatus": "tasks.models.Status.values",
        "FailureReason": "tasks.models.FailureReason.values",
        "AgentFailureReason": "tasks.models.AGENT_FAILURE_REASONS",
        "DisputeReason": "disputes.models.Reason.values",
        "DisputeStatus": "disputes.models.Status.values",
        "Feedback": "tasks.models.Feedback.values",
        "EntryKind": "credits.models.Entry.Kind",
        "ErrorType": "city.api.errors.STATUS",
    },
}

# The product's own settings (API.md).
FEEDBACK_REFUND_WINDOW_SECONDS = env_int("FEEDBACK_REFUND_WINDOW_SECONDS", 600)
PLATFORM_FEE_BPS = env_int("PLATFORM_FEE_BPS", 1000)
if not 0 <= PLATFORM_FEE_BPS <= 10000:
    raise ImproperlyConfigured("PLATFORM_FEE_BPS must be between 0 and 10000")
# The platform's fee income is kept in this many accounts, a capture's fee going to one by its
# hold: captures at once lock different rows (docs/performance.md).
FEE_ACCOUNT_SHARDS = env_int("FEE_ACCOUNT_SHARDS", 8)
if not 1 <= FEE_ACCOUNT_SHARDS <= 1000:
    raise ImproperlyConfigured("FEE_ACCOUNT_SHARDS must be between 1 and 1000")
QUALITY_PASS_SCORE = env_int("QUALITY_PASS_SCORE", 60)
QUALITY_EVALUATOR = env_str("QUALITY_EVALUATOR", "tasks.quality.HeuristicEvaluator")
SANDBOX_PROVIDER = env_str("SANDBOX_PROVIDER", "local")
SANDBOX_ROOT = Path(env_str("SANDBOX_ROOT", str(VAR_DIR / "sandboxes")))
E2B_API_KEY = env_str("E2B_API_KEY")
E2B_API_URL = env_str("E2B_API_URL", "https://api.e2b.dev")
DISPUTE_WINDOW_DAYS = env_int("DISPUTE_WINDOW_DAYS", 30)
DISPUTE_REVIEW_SLA_HOURS = env_int("DISPUTE_REVIEW_SLA_HOURS", 72)
ROUTING_TIMEOUT_SECONDS = env_int("ROUTING_TIMEOUT_SECONDS", 300)
ASSIGNMENT_TIMEOUT_SECONDS = env_int("ASSIGNMENT_TIMEOUT_SECONDS", 600)
EXECUTION_TIMEOUT_SECONDS = env_int("EXECUTION_TIMEOUT_SECONDS", 3600)
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 6000)
AUTH_FAILURES_PER_MINUTE = env_int("AUTH_FAILURES_PER_MINUTE", 60)
ADMIN_LOGIN_FAILURES_PER_MINUTE = env_int("ADMIN_LOGIN_FAILURES_PER_MINUTE", 5)
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 10 * 1024 * 1024)
MAX_TASK_INPUT_BYTES = env_int("MAX_TASK_INPUT_BYTES", 1024 * 1024)
MAX_TASK_OUTPUT_BYTES = env_int("MAX_TASK_OUTPUT_BYTES", 1024 * 1024)
# How many proxies in front of City append to X-Forwarded-For; 0 trusts none of it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600

# The live stream (tasks/stream.py): django-eventstream's listeners, fed through Redis pub/sub
# when REDIS_URL is set (events from workers and other web processes), else in process; a
# reconnect reads what it missed from TaskEvent, which is the storage.
EVENTSTREAM_STORAGE_CLASS = "tasks.stream.TaskEventStorage"
if REDIS_URL:
    from redis.connection import parse_url

    EVENTSTREAM_REDIS = parse_url(REDIS_URL)
STREAM_REDIS_CHANNEL = env_str("STREAM_REDIS_CHANNEL", "city:stream")
STREAM_KEEPALIVE_SECONDS = env_int("STREAM_KEEPALIVE_SECONDS", 15)
STREAM_RETRY_MS = env_int("STREAM_RETRY_MS", 3000)
# How often an open stream also reads TaskEvent for what no message announced: events recorded by
# another process on the embedded default (run_sweeps), or sent while Redis was away.
STREAM_POLL_SECONDS = env_int("STREAM_POLL_SECONDS", 15 if REDIS_URL else 2)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Django's default config gives "django" its own console handler under DEBUG, and lets it
    # propagate to the root as well: every 4xx was printed twice. The root prints it once.
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # It logs every stream opened at INFO.
        "django_eventstream": {"level": "WARNING"},
    },
}

# Each returns a list of discrepancies; ``manage.py check_ledger`` runs them all.
LEDGER_AUDITS = [
    "credits.audit.ledger_audit",
    "tasks.audit.task_money_audit",
    "disputes.audit.dispute_money_audit",
]
