"""Structured logs with a request id that follows a request into the Celery
tasks it causes: the id is taken from X-Request-ID (when sane) or made up,
returned in the response, put on every log record, and carried in the
headers of every task published while handling the request."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

from celery import signals

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SANE.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


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
    request_id_var.set(value if isinstance(value, str) and _SANE.fullmatch(value) else "-")


@signals.task_postrun.connect(weak=False, dispatch_uid="kamen_request_id_done")
def _forget_request_id(**kwargs) -> None:
    request_id_var.set("-")
