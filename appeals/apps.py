from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AppealsConfig(AppConfig):
    name = "appeals"
    verbose_name = _("Appeals")

    def ready(self) -> None:
        # members (below) builds the export; this app adds its records.
        from members.services.exports import register_export_section

        from .exports import export_section

        register_export_section(export_section)
