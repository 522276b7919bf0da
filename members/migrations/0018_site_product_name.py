"""The Site object carries the product's name (as the pages say it) and the
address links are built on, not the seed's "Kamen 会员中心" on port 8000.
Account e-mails no longer read it (they use PORTAL_NAME and PORTAL_BASE_URL);
allauth and the admin still may."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import migrations


def name_site(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    domain = urlsplit(settings.PORTAL_BASE_URL).netloc or "127.0.0.1:8000"
    Site.objects.update_or_create(
        id=settings.SITE_ID, defaults={"domain": domain, "name": "卡盟会员中心"}
    )


def unname_site(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    Site.objects.filter(id=settings.SITE_ID).update(domain="127.0.0.1:8000", name="Kamen 会员中心")


class Migration(migrations.Migration):
    dependencies = [("members", "0017_email_retry_at")]

    operations = [migrations.RunPython(name_site, unname_site)]
