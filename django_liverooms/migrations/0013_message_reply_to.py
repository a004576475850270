import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_liverooms", "0012_messagereaction"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="reply_to",
            field=models.ForeignKey(
                blank=True,
                help_text="The message of the same room this one answers.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="replies",
                to="django_liverooms.message",
                verbose_name="reply to",
            ),
        ),
    ]
