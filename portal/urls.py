"""Pages of the top layer (mounted at /assistant/ by the root URLconf)."""

from portal.assistant.urls import app_name, urlpatterns

__all__ = ["app_name", "urlpatterns"]
