"""Structured logs with a request id that follows a request into the Celery
tasks it causes: the id is taken from X-Request-ID (when sane) or made up,
returned in the response, put on every log record (including the web
server's access line, written after the view returned), and carried in the
headers of every task published while handling the request.

The JSON lines come from python-json-logger; gunicorn (kamen_portal/
gunicorn_conf.py) and Celery workers log through the same formatter."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import uuid
from datetime import UTC, datetime

from celery import signals
from django.core.signals import request_finished
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Fields of gunicorn's access record (its atoms) worth a key of their own.
_ACCESS_FIELDS = {"h": "remote", "m": "method", "U": "path", "s": "status", "B": "bytes"}


def sane_request_id(value) -> str | None:
    return value if isinstance(value, str) and _SANE.fullmatch(value) else None


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not sane_request_id(getattr(record, "request_id", None)):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per line, for log shippers: time, level, logger,
    message, request_id, plus any `extra=` fields; gunicorn's access records
    also get method, path, status, bytes, remote and duration_ms."""

    def __init__(self, *args, **kwargs) -> None:
        # Chinese stays readable in the shipped line, as before the library.
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data, record, message_dict) -> None:
        super().add_fields(log_data, record, message_dict)
        if "exc_info" in log_data:  # the key shippers' parsers already use
            log_data["exception"] = log_data.pop("exc_info")
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        # "-" is the filter's "no request here": gunicorn's access line, written
        # outside the request, takes the id the response carried instead.
        request_id = sane_request_id(getattr(record, "request_id", None))
        request_id = None if request_id == "-" else request_id
        atoms = record.args if isinstance(record.args, dict) else None
        if atoms is not None and record.name == "gunicorn.access":
            for atom, key in _ACCESS_FIELDS.items():
                if atom in atoms:
                    log_data[key] = atoms[atom]
            if isinstance(atoms.get("D"), int):
                log_data["duration_ms"] = round(atoms["D"] / 1000, 3)
            request_id = request_id or sane_request_id(atoms.get("{x-request-id}o"))
        log_data["request_id"] = request_id or request_id_var.get()
        log_data.pop("args", None)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = sane_request_id(request.META.get("HTTP_X_REQUEST_ID")) or uuid.uuid4().hex
        # Not reset here: Django's own request log (4xx/5xx) and the web
        # server's access line are written after this returns. The id is
        # forgotten when the response is closed (request_finished, below).
        request_id_var.set(request_id)
        request.request_id = request_id
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _forget_request_id_after_response(**kwargs) -> None:
    request_id_var.set("-")


request_finished.connect(
    _forget_request_id_after_response, weak=False, dispatch_uid="kamen_request_id_finished"
)


@signals.before_task_publish.connect(weak=False, dispatch_uid="kamen_request_id_out")
def _carry_request_id(headers=None, **kwargs) -> None:
    if headers is not None and request_id_var.get() != "-":
        headers["request_id"] = request_id_var.get()


@signals.task_prerun.connect(weak=False, dispatch_uid="kamen_request_id_in")
def _adopt_request_id(task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    value = getattr(request, "request_id", None) or (getattr(request, "headers", None) or {}).get(
        "request_id"
    )
    request_id_var.set(sane_request_id(value) or "-")


@signals.task_postrun.connect(weak=False, dispatch_uid="kamen_request_id_done")
def _forget_request_id(**kwargs) -> None:
    request_id_var.set("-")


@signals.beat_init.connect(weak=False, dispatch_uid="kamen_capture_warnings_beat")
@signals.celeryd_init.connect(weak=False, dispatch_uid="kamen_capture_warnings")
def _warnings_through_logging(**kwargs) -> None:
    # Celery's start-up warnings (e.g. running as root) become log records,
    # so they come out in the configured format instead of raw stderr.
    logging.captureWarnings(True)


def _json_say(msg, f=sys.__stderr__):
    """Celery's shutdown notices ("worker: Warm shutdown (MainProcess)") are
    written from signal handlers with a bare os.write, around the logging
    system; under LOG_FORMAT=json they become one JSON line each, written
    the same lock-free way."""
    line = {
        "message": str(msg).strip(),
        "request_id": "-",
        "time": datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
        "level": "WARNING",
        "logger": "celery.apps.worker",
    }
    with contextlib.suppress(OSError, ValueError):
        os.write(f.fileno(), (json.dumps(line, ensure_ascii=False) + "\n").encode())


@signals.celeryd_init.connect(weak=False, dispatch_uid="kamen_json_shutdown_notices")
def _shutdown_notices_as_json(**kwargs) -> None:
    from django.conf import settings

    if getattr(settings, "LOG_FORMAT", "text") == "json":
        from celery.apps import worker as celery_worker

        celery_worker.safe_say = _json_say


@signals.worker_ready.connect(weak=False, dispatch_uid="kamen_worker_ready")
def _log_worker_start(sender=None, **kwargs) -> None:
    # The banner is off under LOG_FORMAT=json (`celery --quiet`); what it
    # told an operator is logged instead.
    consumer = sender
    queues = sorted(q.name for q in getattr(getattr(consumer, "task_consumer", None), "queues", []))
    logging.getLogger("kamen_portal.worker").info(
        "worker ready",
        extra={"hostname": getattr(consumer, "hostname", "-"), "queues": queues},
    )
