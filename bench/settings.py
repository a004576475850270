"""Settings of the bench project (both the tutorial consumer and liverooms).

Environment: BENCH_DB (SQLite file), BENCH_DATABASE_URL (a
``postgres://`` URL: PostgreSQL instead of SQLite; the write bench creates
and drops a database of its own per case), BENCH_LAYER ("core" or "pubsub"),
BENCH_FANOUT ("process" or "consumer"), BENCH_REDIS_URL, BENCH_PREFIX,
BENCH_LIVEROOMS (JSON, merged into LIVEROOMS).
"""

import json
import os
from urllib.parse import urlsplit

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "bench.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "django_liverooms",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", "/tmp/liverooms-bench.sqlite3"),
        # Persistent connections, as docs/deployment.md recommends: with 0,
        # every stored message would reopen the database (and SQLite would
        # checkpoint its WAL on every close).
        "CONN_MAX_AGE": 60,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
if os.environ.get("BENCH_DATABASE_URL"):
    _url = urlsplit(os.environ["BENCH_DATABASE_URL"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username or "postgres",
            "PASSWORD": _url.password or "",
            "HOST": _url.hostname or "127.0.0.1",
            "PORT": _url.port or 5432,
            "CONN_MAX_AGE": 60,
        }
    }
LAYER_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": LAYER_BACKENDS[os.environ.get("BENCH_LAYER", "core")],
        "CONFIG": {
            # The pool and timeout the liverooms.E013/E014 checks ask for.
            "hosts": [
                {
                    "address": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                    "max_connections": 10000,
                    "socket_timeout": 30,
                }
            ],
            "prefix": os.environ.get("BENCH_PREFIX", "liverooms-bench"),
        },
    }
}
LIVEROOMS = {
    "ANONYMOUS_CHAT": True,  # the load generator posts as a guest
    "FANOUT": os.environ.get("BENCH_FANOUT", "process"),
    "HISTORY_LIMIT": 10,
    # One guest sends every message of the run (10/s by default), far above a
    # real user's send rate: the rate limits (issue 4) would close it with 4429.
    "FRAME_RATE": None,
    "SEND_RATE": None,
    "USER_SEND_RATE": None,
    # Thousands of sessionless readers from one address (the load generator).
    "MAX_CONNECTIONS_PER_ADDRESS": None,
    # python -m bench writes/storm --set NAME=VALUE: compare settings (e.g. a
    # write window) without editing this file.
    **json.loads(os.environ.get("BENCH_LIVEROOMS", "{}")),
}
# The bench serves WebSockets only (no widgets, no SSE): W123 is expected.
SILENCED_SYSTEM_CHECKS = ["liverooms.W123"]
