"""The dispute panel of a task's dashboard page (placeholder: being built)."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def dispute_panel(context, task):
    return ""
