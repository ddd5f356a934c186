from django.contrib import admin

from .forms import AccountForm, ContactForm
from .models import Account, Contact


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm  # the same validation as the UI and the API
    list_display = ["name", "phone_office", "sms_opt_in", "billing_city"]
    search_fields = ["name", "phone_office"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactForm
    list_display = ["last_name", "first_name", "phone_mobile", "sms_opt_in", "account"]
    search_fields = ["last_name", "first_name", "phone_mobile", "email"]
    raw_id_fields = ["account"]
