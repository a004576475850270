from django.apps import AppConfig


class HostAppConfig(AppConfig):
    name = "tests.hostapp"
    label = "hostapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django_liverooms import bridge

        from .models import Goal

        bridge.register(Goal, stream="blog", frame_for_save=Goal.frame, frame_for_delete=None)
