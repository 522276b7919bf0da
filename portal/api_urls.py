"""The top layer's API (mounted under /api/v1/ by the root URLconf, before
the catch-all JSON 404 of appeals.api.urls)."""

from django.urls import path

from portal.assistant.api import AssistantFeedbackView, AssistantView

urlpatterns = [
    path("assistant/", AssistantView.as_view(), name="api-assistant"),
    path("assistant/feedback/", AssistantFeedbackView.as_view(), name="api-assistant-feedback"),
]
