from django import template

from ..usage_explain import factor_text, weighting_explanation

register = template.Library()


@register.filter
def usage_explanation(weighting) -> str:
    return weighting_explanation(weighting) or ""


@register.filter
def usage_factor(weighting) -> str:
    return factor_text(weighting["factor"]) if weighting and "factor" in weighting else ""


@register.filter
def multiplier(value) -> str:
    return factor_text(value)
