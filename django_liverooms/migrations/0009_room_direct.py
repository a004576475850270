from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_liverooms", "0008_readmarker"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="direct",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="A direct-message room of two users (Room.objects.direct()).",
                verbose_name="direct",
            ),
        ),
    ]
