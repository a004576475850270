import os

import pytest
from channels.layers import channel_layers

# In CI a test that needs a service must fail when it is missing, not skip.
SERVICES_REQUIRED = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("LIVEROOMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "LIVEROOMS_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
)


def missing_service(reason: str) -> None:
    if SERVICES_REQUIRED:
        pytest.fail(f"{reason} (CI=true: a missing service fails the run)")
    pytest.skip(reason)


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_url():
    """A real Redis server's URL; skips (fails in CI) when there is none."""
    if not redis_available():
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(autouse=True)
def fresh_runtime():
    """Each test starts with no per-loop or process-wide state of the app's
    (runtime.py), and fresh channel layers, which hold asyncio objects bound
    to one event loop."""
    from django_liverooms import runtime

    channel_layers.backends = {}
    runtime.reset()
    yield
    channel_layers.backends = {}
    runtime.reset()


@pytest.fixture(autouse=True)
def close_database_thread_connections():
    # With no async_to_sync around them, database_sync_to_async calls run in
    # asgiref's one executor thread, whose connections the test runner does
    # not see: left open, PostgreSQL refuses to drop the test database.
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture
def alice():
    """A signed-in user with no permission (tests that use it need database access)."""
    from .factories import make_user

    return make_user("alice")


@pytest.fixture
def bob():
    from .factories import make_user

    return make_user("bob")


@pytest.fixture
def room():
    """The chat room "lobby" (tests that use it need database access)."""
    from .factories import make_room

    return make_room()


CHROMIUM = os.environ.get("LIVEROOMS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """The system's headless Chromium, through Playwright (no browser download).

    Skips without Playwright or Chromium (fails under CI=true). Per module,
    not per session: Playwright's sync API keeps an event loop running in
    this thread while it is open, which the asyncio tests cannot share.
    """
    import shutil
    from pathlib import Path

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("Playwright (python) is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing_service(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
