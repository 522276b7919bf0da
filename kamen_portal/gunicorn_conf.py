"""gunicorn settings: `gunicorn -c python:kamen_portal.gunicorn_conf kamen_portal.wsgi`.

Its error and access logs go through the portal's own logging configuration
(settings.LOGGING: the same format choice, level and request-id filter), so
with LOG_FORMAT=json every line gunicorn writes is one JSON object (with the
request id on the access line). Command-line flags still override these."""

import copy
import logging

from kamen_portal import settings
from kamen_portal.logging import request_id_var

wsgi_app = "kamen_portal.wsgi"
# Access lines in the combined format, plus the request id the app returned.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s "%(a)s" %(D)sus rid=%({x-request-id}o)s'

logconfig_dict = copy.deepcopy(settings.LOGGING)
logconfig_dict["handlers"]["console"]["stream"] = "ext://sys.stdout"
logconfig_dict["loggers"] |= {
    "gunicorn.error": {
        "handlers": ["console"],
        "level": logconfig_dict["root"]["level"],
        "propagate": False,
    },
    "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
}


# Python warnings (a missing static directory, a deprecation) become log
# records in the same format instead of bare lines on stderr; set in the
# master, so every forked worker inherits it.
logging.captureWarnings(True)


def post_request(worker, req, environ, resp):
    """Forget the request's id once its access line is written: a request that
    ended in an error page never reached request_finished, and the worker's
    next lines (e.g. "Worker exiting") are not that request's."""
    request_id_var.set("-")
