import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamen_portal.settings")

app = Celery("kamen_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids travel with tasks (signal handlers registered on import).
from . import logging as _request_id_logging  # noqa: E402, F401
