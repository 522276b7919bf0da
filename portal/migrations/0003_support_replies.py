"""Staff answers become a thread (SupportReply rows) instead of one field
that a second answer overwrote. Each stored answer becomes the request's
first reply; reversing keeps the latest answer in the old field."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def replies_from_field(apps, schema_editor):
    SupportRequest = apps.get_model("portal", "SupportRequest")
    SupportReply = apps.get_model("portal", "SupportReply")
    SupportReply.objects.bulk_create(
        SupportReply(
            request_id=r.pk,
            body=r.staff_reply,
            author_id=r.replied_by_id,
            created_at=r.replied_at or r.updated_at,
        )
        for r in SupportRequest.objects.exclude(staff_reply="").iterator()
    )


def field_from_replies(apps, schema_editor):
    SupportRequest = apps.get_model("portal", "SupportRequest")
    SupportReply = apps.get_model("portal", "SupportReply")
    for reply in SupportReply.objects.order_by("request_id", "created_at", "pk").iterator():
        SupportRequest.objects.filter(pk=reply.request_id).update(
            staff_reply=reply.body, replied_by_id=reply.author_id
        )


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_support_request_reply"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SupportReply",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("body", models.TextField(max_length=5000, verbose_name="reply")),
                ("created_at", models.DateTimeField(verbose_name="answered at")),
                (
                    "author",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="answered by",
                    ),
                ),
                (
                    "request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="replies",
                        to="portal.supportrequest",
                        verbose_name="support request",
                    ),
                ),
            ],
            options={
                "verbose_name": "support reply",
                "verbose_name_plural": "support replies",
                "ordering": ["created_at", "pk"],
            },
        ),
        migrations.RunPython(replies_from_field, field_from_replies),
        migrations.RemoveField(model_name="supportrequest", name="staff_reply"),
        migrations.RemoveField(model_name="supportrequest", name="replied_by"),
        migrations.AlterField(
            model_name="supportrequest",
            name="replied_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last answered at"),
        ),
    ]
