from django.contrib import admin

from .models import MessageEvent, SmsMessage


class EventInline(admin.TabularInline):
    model = MessageEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "from_status", "to_status", "detail", "actor", "data"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    """Read-only: a status changes only through the state machine (sms.transitions)."""

    list_display = ["id", "recipient_name", "to_number", "status", "send_at", "sent_at", "error_code"]
    list_filter = ["status", "provider"]
    search_fields = ["recipient_name", "to_number", "body", "provider_message_id"]
    inlines = [EventInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
