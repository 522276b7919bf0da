"""Django admin for appeals: the reviewer's workspace (appeal.py), its forms
and filters (forms.py) and the decision panel (decisions.py)."""

from django.contrib import admin

from ..models import ReasonTemplate
from .appeal import AppealAdmin


@admin.register(ReasonTemplate)
class ReasonTemplateAdmin(admin.ModelAdmin):
    list_display = ("title", "active")
    list_filter = ("active",)


__all__ = ["AppealAdmin", "ReasonTemplateAdmin"]
