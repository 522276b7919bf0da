from django import forms
from django.utils.translation import gettext_lazy as _

from kamen_portal.timeinput import BoundedFormDateTimeField

from .models import SourceKind


class CalculatorForm(forms.Form):
    minutes = forms.IntegerField(
        label=_("Minutes lost"), min_value=0, max_value=100_000, initial=12
    )
    source = forms.ChoiceField(
        label=_("Cause"),
        choices=[
            (SourceKind.DISCONNECT, _("My own disconnect")),
            (SourceKind.INCIDENT, _("An incident")),
        ],
        initial=SourceKind.DISCONNECT,
    )
    already = forms.IntegerField(
        label=_("Minutes already credited in the last 30 days"),
        min_value=0,
        max_value=1_000_000,
        initial=0,
        required=False,
    )


class UsageCalculatorForm(CalculatorForm):
    """The calculator when the policy weights lost minutes by usage: the
    start of the loss decides which of the member's hours it fell in."""

    start = BoundedFormDateTimeField(
        label=_("When it started (your local time)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class RedeemForm(forms.Form):
    key = forms.CharField(
        label=_("Card key"),
        max_length=64,
        help_text=_(
            "As printed on your card, e.g. 7K2M9-QX4TP-H8N3R-WC6ZD. Case and dashes do not matter."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}
        ),
    )
