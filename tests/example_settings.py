"""The example project's settings on a database of the test's choosing."""

import os

from example.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["LIVEROOMS_EXAMPLE_DB"],
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
DEBUG = False
# Uploads (chat attachments) next to the test's database, not in the project.
MEDIA_ROOT = os.path.join(os.path.dirname(os.environ["LIVEROOMS_EXAMPLE_DB"]), "media")

if os.environ.get("REDIS_URL"):
    # A prefix of its own, so parallel runs on one Redis never meet.
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = os.environ["LIVEROOMS_TEST_LAYER_PREFIX"]  # noqa: F405
