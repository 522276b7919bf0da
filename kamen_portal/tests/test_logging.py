import json
import logging
from types import SimpleNamespace

from kamen_portal.logging import (
    JsonFormatter,
    RequestIdFilter,
    _adopt_request_id,
    _carry_request_id,
    request_id_var,
)


def test_responses_carry_a_request_id_and_keep_a_sane_incoming_one(client, db):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="edge-42")["X-Request-ID"] == "edge-42"
    assert (
        client.get("/healthz", HTTP_X_REQUEST_ID="bad id\\n<script>")["X-Request-ID"]
        != "bad id\\n<script>"
    )


def test_the_request_id_follows_into_the_tasks_it_causes():
    token = request_id_var.set("req-123")
    try:
        headers = {}
        _carry_request_id(headers=headers)
    finally:
        request_id_var.reset(token)
    assert headers == {"request_id": "req-123"}
    # In the worker, the task's request carries the header.
    _adopt_request_id(task=SimpleNamespace(request=SimpleNamespace(request_id="req-123")))
    record = logging.LogRecord(
        "compensation", logging.INFO, __file__, 1, "credited %s", ("12",), None
    )
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert (
        line["request_id"] == "req-123"
        and line["message"] == "credited 12"
        and line["level"] == "INFO"
    )
    request_id_var.set("-")


def test_a_json_line_keeps_chinese_readable_and_the_traceback_under_exception():
    formatter = JsonFormatter()
    try:
        raise ZeroDivisionError("x")
    except ZeroDivisionError:
        import sys

        record = logging.LogRecord(
            "kamen", logging.ERROR, __file__, 1, "掉线 %s", (3,), sys.exc_info()
        )
    record.request_id = "req-9"
    line = formatter.format(record)
    assert "掉线 3" in line and "\n" not in line
    payload = json.loads(line)
    assert (payload["message"], payload["level"], payload["request_id"]) == (
        "掉线 3",
        "ERROR",
        "req-9",
    )
    assert "ZeroDivisionError" in payload["exception"] and "exc_info" not in payload


def test_the_access_line_takes_the_request_id_the_response_carried():
    # gunicorn writes it outside the request (the filter has only "-").
    atoms = {"h": "127.0.0.1", "m": "GET", "U": "/", "s": "200", "B": 2, "D": 560}
    atoms["{x-request-id}o"] = "rid-7"
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(h)s %(m)s", (atoms,), None
    )
    RequestIdFilter().filter(record)
    payload = json.loads(JsonFormatter().format(record))
    assert (payload["request_id"], payload["status"], payload["duration_ms"]) == (
        "rid-7",
        "200",
        0.56,
    )


def test_the_shipped_units_log_json_and_the_guide_shows_them_as_they_are():
    from pathlib import Path

    from django.conf import settings

    base = Path(settings.BASE_DIR)
    portal = ("kamen-web.service", "kamen-worker@.service", "kamen-beat.service")
    units = {name: (base / "deploy" / "systemd" / name).read_text() for name in portal}
    assert "-c python:kamen_portal.gunicorn_conf" in units["kamen-web.service"]
    assert "celery -A kamen_portal --quiet worker" in units["kamen-worker@.service"]
    assert "celery -A kamen_portal --quiet beat" in units["kamen-beat.service"]
    guide = (base / "docs" / "deployment.md").read_text()
    for text in units.values():
        assert f"```ini\n{text}```" in guide  # the guide quotes each file whole
