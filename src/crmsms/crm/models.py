"""Contacts and accounts: the records an SMS is sent to."""

from django.db import models
from django.urls import reverse

from . import phones


class Recipient(models.Model):
    """What contacts and accounts share as receivers of SMS (the protocol sms.eligibility
    and sms.generation read): the field their SMS go to, the opt-in, and the kind of that
    number, worked out when the record is saved."""

    phone_field = ""  # the subclass's field holding the number SMS go to, in E.164
    sms_opt_in = models.BooleanField("SMS opt in", default=False)
    # phones.kind() of the number, kept with it ("" = not worked out yet: a bulk insert
    # bypasses save(); readers then work it out themselves).
    number_kind = models.CharField(max_length=20, blank=True, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.number_kind = phones.kind(self.sms_number)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "number_kind"}
        super().save(*args, **kwargs)

    @property
    def sms_number(self) -> str:
        return getattr(self, self.phone_field)

    @property
    def phone_display(self) -> str:
        return phones.display(self.sms_number)


class Account(Recipient):
    name = models.CharField(max_length=200)
    # The manual's "Phone field": the number an account's SMS go to, in E.164.
    phone_office = models.CharField("Phone", max_length=20, blank=True, db_index=True)
    billing_street = models.CharField("Street", max_length=200, blank=True)
    billing_postal_code = models.CharField("Postal code", max_length=20, blank=True)
    billing_city = models.CharField("City", max_length=100, blank=True)
    billing_country = models.CharField("Country", max_length=100, blank=True)
    website = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("crm:account_detail", args=[self.pk])

    module = "accounts"
    phone_field = "phone_office"


class Contact(Recipient):
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100)
    title = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    # The manual's "Mobile field": where a contact's SMS go, in E.164.
    phone_mobile = models.CharField("Mobile", max_length=20, blank=True, db_index=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_absolute_url(self) -> str:
        return reverse("crm:contact_detail", args=[self.pk])

    module = "contacts"
    phone_field = "phone_mobile"


class ConsentChange(models.Model):
    """One change of a record's SMS opt-in, whatever made it: the consent ledger. Written by
    crm.consent whenever a contact's or account's « SMS opt in » changes."""

    UI, API, IMPORT, INBOUND_STOP, INBOUND_START, PROVIDER, SYSTEM = (
        "ui", "api", "import", "inbound_stop", "inbound_start", "provider", "system")
    SOURCES = [(UI, "Web UI"), (API, "REST API"), (IMPORT, "Import"), (INBOUND_STOP, "Replied STOP"),
               (INBOUND_START, "Replied START"), (PROVIDER, "Provider"), (SYSTEM, "System")]

    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="consent")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE, related_name="consent")
    number = models.CharField(max_length=20, blank=True)  # the record's number at the time
    opt_in = models.BooleanField()  # the new value
    source = models.CharField(max_length=20, choices=SOURCES)
    actor = models.CharField(max_length=150, blank=True)  # a username, a provider
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]


class OptOut(models.Model):
    """A number that asked for no more SMS (it replied STOP, or a provider said it is
    unsubscribed). Nobody gets an SMS at this number, and « SMS opt in » cannot be ticked
    again for it without a recorded reason."""

    number = models.CharField(max_length=20, unique=True)  # E.164
    since = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=20, choices=ConsentChange.SOURCES)
    detail = models.TextField(blank=True)  # what the person wrote, the provider's error

    def __str__(self) -> str:
        return self.number
