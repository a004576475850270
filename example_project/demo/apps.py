from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The example project's pages: a home page, a chat page, a live blog page."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
