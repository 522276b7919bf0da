import pytest
from django.conf import settings
from django_celery_beat.schedulers import ModelEntry

from kamen_portal.celery import app

pytestmark = pytest.mark.django_db


def test_every_beat_entry_loads_into_the_database_scheduler():
    app.loader.import_default_modules()  # what a worker does at start-up
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        model_entry = ModelEntry.from_entry(name, app=app, **entry)
        assert model_entry.task == entry["task"]
        # A misspelt task name would be scheduled forever and never run.
        assert model_entry.task in app.tasks, f"{name}: no task {model_entry.task}"


def test_a_stale_detection_pass_expires_instead_of_piling_up():
    entry = ModelEntry.from_entry(
        "detect-disconnects", app=app, **settings.CELERY_BEAT_SCHEDULE["detect-disconnects"]
    )
    assert entry.options["expires"] == 25
