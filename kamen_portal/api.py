"""Project-wide REST framework glue: parsers that never let hostile bodies
reach a view, one error shape for every API error, and its OpenAPI schema.

Every error the API returns is ``{"error": <stable code>, "detail": <message
in the request's language>}``, sometimes with more keys (``fields`` for
validation errors, ``file`` for a bad upload, ``existing`` for a duplicate).
Clients branch on ``error``; people read ``detail``.
"""

from __future__ import annotations

import codecs
import json

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, pagination, parsers, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.utils import json as drf_json

# Deeper than any body we accept needs (ours are two levels deep), far below
# the interpreter's recursion limit, so nothing downstream can recurse on it.
MAX_JSON_DEPTH = 32


class RequestError(exceptions.ParseError):
    """A request that cannot be used at all (body, page number): 400 with a
    stable code."""

    def __init__(self, code: str, message: str):
        super().__init__(detail=message, code=code)


def _depth_exceeds(value, limit: int) -> bool:
    """Iterative (a recursive check would fail on the very input it guards)."""
    if not isinstance(value, dict | list):
        return False
    # Only containers are stacked: a batch of 500 heartbeats is 2,000 scalars
    # that cost nothing here (this check was a tenth of ingest's CPU).
    stack = [(value, 1)]
    containers = (dict, list)
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if type(item) is dict else item:
            if type(child) in containers:
                stack.append((child, depth + 1))
    return False


class JSONObjectParser(parsers.JSONParser):
    """JSON whose top level is an object, nested at most MAX_JSON_DEPTH deep.

    The standard parser lets ``RecursionError`` escape on deeply nested input
    (a 500) and hands lists, strings and numbers to views that expect an
    object (another 500). Every body of this API is an object."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            # drf_json refuses NaN and Infinity, which are not JSON.
            data = drf_json.loads(text)
        except RecursionError as exc:
            raise RequestError(
                "json_too_deep",
                _("The JSON body is nested too deeply (at most %(n)d levels).")
                % {"n": MAX_JSON_DEPTH},
            ) from exc
        except json.JSONDecodeError as exc:
            raise RequestError(
                "invalid_json",
                _("The body is not valid JSON (line %(line)d, column %(column)d).")
                % {"line": exc.lineno, "column": exc.colno},
            ) from exc
        except ValueError as exc:  # undecodable bytes for the declared charset
            raise RequestError("invalid_json", _("The body is not valid JSON text.")) from exc
        if not isinstance(data, dict):
            raise RequestError("invalid_body", _("The body must be a JSON object."))
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise RequestError(
                "json_too_deep",
                _("The JSON body is nested too deeply (at most %(n)d levels).")
                % {"n": MAX_JSON_DEPTH},
            )
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except exceptions.ParseError as exc:
            raise RequestError(
                "invalid_multipart", _("The body is not a valid multipart form.")
            ) from exc


class FormParser(parsers.FormParser):
    pass


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=N`` as documented: a positive integer. The stock class reads
    an empty value as page 1 and accepts "last"; anything but digits is a
    400 here, and a page past the end a 404."""

    last_page_strings = ()

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not (raw.isascii() and raw.isdigit()):
            raise RequestError("invalid_page", _("The page must be a whole number, 1 or more."))
        return raw

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


class CsrfSessionAuthentication(SessionAuthentication):
    """Session authentication whose CSRF refusal has a stable code and a
    translated message (the stock one is English-only prose)."""

    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise exceptions.PermissionDenied(
                _(
                    "CSRF check failed: send the csrftoken cookie and the same value in the X-CSRFToken header."
                ),
                code="csrf_failed",
            ) from exc


class CsrfSessionScheme(OpenApiAuthenticationExtension):
    """Documents the member session (cookie, plus X-CSRFToken on writes)."""

    target_class = CsrfSessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        from django.conf import settings

        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "Member session; writes also need the csrftoken cookie "
            "and its value in the X-CSRFToken header",
        }


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            message = _first_message(value)
            if message:
                return message if key == "non_field_errors" else f"{key}: {message}"
        return ""
    if isinstance(detail, list):
        return next((m for m in (_first_message(v) for v in detail) if m), "")
    return str(detail)


def exception_handler(exc, context):
    """DRF's handler, then one error shape. Django's refusals of a hostile
    body (too many fields, too large) become JSON 400/413 instead of an HTML
    page."""
    if isinstance(exc, RequestDataTooBig):
        exc = exceptions.APIException(
            detail=_("The request body is too large."), code="body_too_large"
        )
        exc.status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    elif isinstance(exc, SuspiciousOperation):
        exc = RequestError("invalid_body", _("The request body was refused as malformed."))
    # Imported here: rest_framework.views loads this module through the
    # REST_FRAMEWORK settings, so a top-level import would be circular.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return response  # already in our shape
    if isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        response.data = {
            "error": "invalid",
            "detail": _first_message(fields) or _("The request is invalid."),
            "fields": fields,
        }
        return response
    detail = getattr(exc, "detail", None)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"error": str(code), "detail": str(detail if detail is not None else data)}
    return response


class ErrorSerializer(serializers.Serializer):
    """The body of every API error."""

    error = serializers.CharField(help_text="Stable machine-readable code, e.g. not_found")
    detail = serializers.CharField(help_text="Human-readable message in the request's language")
    fields = serializers.DictField(
        required=False,
        help_text="Validation errors per field, as lists of messages (error = invalid)",
    )
    file = serializers.CharField(required=False, help_text="The upload that was refused")
    existing = serializers.UUIDField(required=False, help_text="The appeal this one duplicates")


_DESCRIPTIONS = {
    400: "Malformed or invalid request (error names the reason)",
    401: "Missing, invalid or revoked node token",
    403: "Not signed in, or CSRF check failed",
    404: "Not found, or not yours",
    405: "Method not allowed",
    409: "Conflicts with the current state (duplicate, already decided)",
    413: "Request body too large",
    415: "Unsupported Content-Type",
    429: "Throttled: retry after the Retry-After header",
}


def error_responses(*codes: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the errors an operation really returns, all
    with the ErrorSerializer body. ``descriptions`` override by ``e<code>``."""
    return {
        code: OpenApiResponse(
            response=ErrorSerializer,
            description=descriptions.get(f"e{code}", _DESCRIPTIONS[code]),
        )
        for code in codes
    }


@csrf_exempt  # it changes nothing, and a 403 page would hide the real answer
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """A JSON 404 for any /api/ address no route matches (an id that is not
    a UUID, a typo): API clients get the error shape, not the HTML page."""
    return JsonResponse(
        {"error": "not_found", "detail": _("There is no such API address.")}, status=404
    )
