"""Django REST Framework and the OpenAPI schema (drf-spectacular): how every
API view authenticates, parses, throttles, fails and is documented.
kamen_portal/settings.py imports them by name."""

from .env import env_str

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "kamen_portal.api.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Hostile bodies (deep or non-object JSON, broken multipart) are a 400
    # with a stable code, never a 500; every error has one shape.
    "DEFAULT_PARSER_CLASSES": [
        "kamen_portal.api.JSONObjectParser",
        "kamen_portal.api.FormParser",
        "kamen_portal.api.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "kamen_portal.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "kamen_portal.api.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_RATE", "600/minute"),
        "anon": "60/minute",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kamen member portal API",
    "DESCRIPTION": "Member self-service and service-node API of the Kamen portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request components, so uploads are documented as binary files
    # (multipart, format: binary) rather than as the URLs responses carry.
    "COMPONENT_SPLIT_REQUEST": True,
    # Rules serializers cannot express (either/or fields, per-item checks).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "compensation.api.schema.heartbeat_items_are_checked_one_by_one",
        "appeals.api.schema.appeal_request_rules",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AppealStatusEnum": "appeals.models.AppealStatus",
        "DisconnectStatusEnum": "compensation.models.DisconnectStatus",
        "MemberStatusEnum": "members.models.MemberStatus",
        "EventTypeEnum": "integrations.models.EventType",
        # Two different "state" fields: a heartbeat's and a status component's.
        "HeartbeatStateEnum": ["alive", "ended"],
        "ComponentStateEnum": "compensation.api.status.STATES",
    },
}
