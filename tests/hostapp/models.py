"""A host project's own model, pushed into a live blog with bridge.register()."""

from django.db import models

from django_liverooms.models import LiveBlog


class Goal(models.Model):
    blog = models.ForeignKey(LiveBlog, on_delete=models.CASCADE)
    scorer = models.CharField(max_length=100)
    minute = models.PositiveIntegerField()

    def __str__(self):
        return f"{self.scorer} {self.minute}'"

    def frame(self, created):
        if not created:
            return None
        return {"type": "goal", "id": self.pk, "scorer": self.scorer, "minute": self.minute}
