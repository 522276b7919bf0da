"""How usage weighting is explained to a member: one home for the sentence,
used by the compensation page, the receipt and the API."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _


def factor_text(factor) -> str:
    """1.60 -> "1.6", 2.00 -> "2": how a person writes a multiplier."""
    try:
        value = Decimal(str(factor)).normalize()
    except InvalidOperation:
        return str(factor)
    return f"{value:f}"


def weighting_explanation(weighting: dict | None) -> str | None:
    """The reason a credit was weighted, from what its ledger entry recorded
    (None for entries without weighting)."""
    if not weighting or "factor" not in weighting:
        return None
    return _(
        "You usually use the service %(start)s–%(end)s; time lost in these hours counts "
        "%(factor)s times."
    ) % {
        "start": weighting.get("habit_from", ""),
        "end": weighting.get("habit_to", ""),
        "factor": factor_text(weighting["factor"]),
    }
