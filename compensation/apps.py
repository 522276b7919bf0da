from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CompensationConfig(AppConfig):
    name = "compensation"
    verbose_name = _("Compensation")

    def ready(self) -> None:
        # members (below) builds the export; this app adds its records.
        from members.services.exports import register_export_section

        from . import checks  # noqa: F401 - registers the ledger log key check
        from .exports import export_section
        from .usage_export import usage_export_section

        register_export_section(export_section)
        register_export_section(usage_export_section)

        from kamen_portal.metrics import register_collector

        from .selectors import ledger_metrics

        register_collector(ledger_metrics)

        from .health_selectors import node_health_metrics

        register_collector(node_health_metrics)
