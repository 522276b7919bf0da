import uuid

from django import forms
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from compensation.models import Node
from kamen_portal.timeinput import BoundedFormDateTimeField

from .evidence import MAX_LOGS, MAX_SCREENSHOTS


def _interpolate(message, values) -> str:
    return message % values


# ``gettext_lazy(...) % values`` would be translated once, at import, in
# whatever language was active then; this one is formatted at each rendering.
interpolate_lazy = lazy(_interpolate, str)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is validated by appeals.evidence."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if not data:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return []
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


_SPAN_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


def _span_field(label):
    return BoundedFormDateTimeField(
        label=label,
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "step": 60}, format="%Y-%m-%dT%H:%M"
        ),
        input_formats=_SPAN_FORMATS,
        required=False,
    )


class SpanForm(forms.Form):
    """Step one of the guided appeal: which time (prefilled from a recorded
    disconnect, which the member may extend). Read from the query string."""

    disconnect = forms.UUIDField(widget=forms.HiddenInput, required=False)
    claimed_start = _span_field(_("Disconnected from"))
    claimed_end = _span_field(_("Until"))


class AppealForm(SpanForm):
    submission_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    node = forms.ModelChoiceField(
        label=_("Node"),
        queryset=Node.objects.filter(revoked_at__isnull=True),
        required=False,
        empty_label=_("I don't know / another service"),
    )
    service = forms.CharField(label=_("Or describe the service"), max_length=120, required=False)
    description = forms.CharField(
        label=_("What happened"),
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=5000,
        help_text=_(
            "When it started, how long it lasted, what you saw (error messages, what you tried)."
        ),
    )
    screenshots = MultipleFileField(
        label=_("Screenshots"),
        required=False,
        help_text=interpolate_lazy(
            _("1 to %(n)d images: JPEG, PNG or WebP, up to 10 MB and 40 megapixels each."),
            {"n": MAX_SCREENSHOTS},
        ),
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    logs = MultipleFileField(
        label=_("Log files (optional)"),
        required=False,
        help_text=interpolate_lazy(_("Up to %(n)d plain-text files, 2 MB each."), {"n": MAX_LOGS}),
        widget=MultipleFileInput(attrs={"accept": ".txt,.log,text/plain"}),
    )

    def __init__(self, *args, fixed: tuple[str, ...] = (), **kwargs):
        """``fixed``: the span fields a recorded disconnect already gives (not
        shown, not required)."""
        super().__init__(*args, **kwargs)
        self.fixed = fixed

    def clean(self):
        data = super().clean()
        for field in ("claimed_start", "claimed_end"):
            if field not in self.fixed and not data.get(field) and field not in self.errors:
                self.add_error(field, _("This field is required."))
        return data


class ReplyForm(forms.Form):
    message = forms.CharField(
        label=_("Message"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        required=False,
    )
    screenshots = MultipleFileField(
        label=_("Add screenshots"),
        required=False,
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    logs = MultipleFileField(
        label=_("Add log files"),
        required=False,
        widget=MultipleFileInput(attrs={"accept": ".txt,.log,text/plain"}),
    )
