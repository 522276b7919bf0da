from django.apps import AppConfig


class KamenPortalConfig(AppConfig):
    """The project package as an app only for start-up hooks that must run
    before django.contrib.admin's autodiscovery (listed ahead of it)."""

    name = "kamen_portal"
    label = "kamen_portal"
    verbose_name = "Kamen portal"

    def ready(self) -> None:
        from .timeinput import install_admin_time_bounds

        install_admin_time_bounds()
