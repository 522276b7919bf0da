"""gunicorn settings: `gunicorn -c python:kamen_portal.gunicorn_conf kamen_portal.wsgi`.

Its error and access logs go through the portal's formatter, so with
LOG_FORMAT=json every line gunicorn writes is one JSON object (with the
request id on the access line). Command-line flags still override these."""

import os

from kamen_portal.env import env_bool

_format = os.environ.get("LOG_FORMAT") or ("text" if env_bool("DEBUG", default=True) else "json")
_level = os.environ.get("LOG_LEVEL", "INFO")

wsgi_app = "kamen_portal.wsgi"
# Access lines in the combined format, plus the request id the app returned.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s "%(a)s" %(D)sus rid=%({x-request-id}o)s'
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "kamen_portal.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "kamen_portal.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _format,
            "filters": ["request_id"],
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"handlers": ["console"], "level": _level},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": _level, "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
