from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LiveroomsConfig(AppConfig):
    name = "django_liverooms"
    verbose_name = _("Live rooms")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import attachments, bridge, checks, revoke, scheduling  # noqa: F401  (checks register on import)

        attachments.connect_signals()
        bridge.connect_builtin_models()
        revoke.connect_signals()
        scheduling.connect_signals()
