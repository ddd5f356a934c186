from django import template
from django.utils.html import format_html

from crmsms.crm import phones
from crmsms.sms import states

register = template.Library()


@register.simple_tag
def status_badge(status: str):
    return format_html('<span class="badge badge-{}">{}</span>', status, states.LABELS.get(status, status))


@register.filter
def phone(e164: str) -> str:
    return phones.display(e164)


@register.filter
def get(mapping: dict, key):
    return mapping.get(key)


@register.simple_tag
def campaign_badge(campaign):
    return format_html('<span class="badge badge-c-{}">{}</span>', campaign.status, campaign.get_status_display())
