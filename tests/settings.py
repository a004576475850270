"""Settings for the test suite.

``DATABASE_URL=postgres://...`` runs it on PostgreSQL and
``REDIS_URL=redis://...`` on the Redis channel layer (see tox.ini).
"""

import json
import os
import uuid
from urllib.parse import urlsplit

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "channels",
    "django_liverooms",
    "tests.hostapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database(url):
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(os.path.dirname(__file__), "test.sqlite3"),
        }
    parts = urlsplit(url)
    if parts.scheme == "sqlite":  # sqlite:////absolute/path, for the server-process tests
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path,
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/") or "test",
        "USER": parts.username or "postgres",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": parts.port or 5432,
        # The reliability suite's servers keep their connections (see test_reliability).
        "CONN_MAX_AGE": int(os.environ.get("LIVEROOMS_TEST_CONN_MAX_AGE", "0")),
        # Each tox env gets its own test database, so envs may run in parallel.
        "TEST": {"NAME": f"test_liverooms_{os.getpid()}"},
    }


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}


def redis_channel_layers(*urls, prefix=None):
    """CHANNEL_LAYERS for a RedisChannelLayer over ``urls`` (several: sharded),
    with the pool checks E013/E014 ask for, under a prefix of its own so that
    runs sharing one Redis do not see each other's groups."""
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": url, "max_connections": 10000, "socket_timeout": 30} for url in urls
                ],
                "prefix": prefix or f"liverooms-test-{uuid.uuid4().hex[:8]}",
            },
        }
    }


REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    # Several URLs, comma-separated: a sharded layer (tests/test_scaleout.py).
    CHANNEL_LAYERS = redis_channel_layers(
        *REDIS_URL.split(","), prefix=os.environ.get("LIVEROOMS_TEST_LAYER_PREFIX")
    )
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LIVEROOMS = {"PERSISTENCE": os.environ.get("LIVEROOMS_TEST_PERSISTENCE", "inline")}
# Server-process tests shorten presence's timings (tests/test_live_presence.py).
for _key in ("PRESENCE_TTL", "PRESENCE_HEARTBEAT", "PRESENCE_INTERVAL"):
    if os.environ.get(f"LIVEROOMS_TEST_{_key}"):
        LIVEROOMS[_key] = float(os.environ[f"LIVEROOMS_TEST_{_key}"])

SILENCED_SYSTEM_CHECKS = ["liverooms.W010"]

# Extra LIVEROOMS keys for server processes started by tests (JSON).
LIVEROOMS.update(json.loads(os.environ.get("LIVEROOMS_TEST_SETTINGS", "{}")))

# Server processes started by tests log the app's INFO lines (e.g. a socket
# closed as too slow), which their tests read.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_liverooms": {"handlers": ["console"], "level": "INFO"}},
}
