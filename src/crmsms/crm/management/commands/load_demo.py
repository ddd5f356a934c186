"""`crmsms load-demo`: the demo user (demo / demo) and a few accounts and contacts that show
every eligibility case. Safe to run twice: it adds nothing that is already there."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from crmsms.crm.forms import AccountForm, ContactForm
from crmsms.crm.models import Account, Contact
from crmsms.sms.models import SmsTemplate
from crmsms.users.models import Profile

ACCOUNTS = [
    # name, phone as typed, opt-in, city
    {"name": "Boulangerie Martin", "phone_office": "+33 6 11 22 33 44", "sms_opt_in": True, "billing_city": "Lyon"},
    {"name": "Garage Dupont", "phone_office": "01 42 68 53 00", "sms_opt_in": True, "billing_city": "Paris"},  # a landline
    {"name": "Cabinet Leroy", "phone_office": "+33 7 55 66 77 88", "sms_opt_in": False, "billing_city": "Nantes"},
]
CONTACTS = [
    {"first_name": "Camille", "last_name": "Bernard", "title": "Owner", "email": "camille@example.com",
     "phone_mobile": "+33612345678", "sms_opt_in": True, "account": "Boulangerie Martin"},
    # typed in national format: read as French (CRMSMS_DEFAULT_REGION=FR)
    {"first_name": "Lucas", "last_name": "Petit", "title": "Sales", "email": "lucas@example.com",
     "phone_mobile": "06 98 76 54 32", "sms_opt_in": True, "account": "Garage Dupont"},
    {"first_name": "Emma", "last_name": "Moreau", "title": "Buyer", "email": "emma@example.com",
     "phone_mobile": "+33 7 81 02 03 04", "sms_opt_in": False, "account": "Cabinet Leroy"},
    {"first_name": "Noah", "last_name": "Garcia", "title": "", "email": "noah@example.com",
     "phone_mobile": "", "sms_opt_in": True, "account": None},
    {"first_name": "Olivia", "last_name": "Smith", "title": "Partner", "email": "olivia@example.co.uk",
     "phone_mobile": "+44 7911 123456", "sms_opt_in": True, "account": None},
]


TEMPLATES = [
    ("Order ready", "contacts",
     'Bonjour {{ contact.first_name|default:"cher client" }}, votre commande est prete chez '
     '{{ contact.account.name|default:"nous" }}. A bientot ! {{ user.first_name }}'),
    ("Appointment reminder", "contacts",
     'Hello {{ contact.first_name|default:"there" }}, a reminder of your appointment on {{ today }}. '
     'Reply to this SMS to move it.'),
    ("Opening hours", "accounts",
     "{{ account.name }}: our shop in {{ account.billing_city }} is open from 9am to 7pm, Monday to Saturday."),
]


class Command(BaseCommand):
    help = "Load the demo user and demo records (idempotent)."

    @transaction.atomic
    def handle(self, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(username="demo", defaults={
            "first_name": "Demo", "last_name": "User", "is_staff": True, "is_superuser": True,
        })
        if created:
            user.set_password("demo")
            user.save()
        Profile.objects.get_or_create(user=user, defaults={"time_zone": "Europe/Paris"})
        # Through the same forms as the UI, so the demo numbers are normalised like typed ones.
        for data in ACCOUNTS:
            if not Account.objects.filter(name=data["name"]).exists():
                self._save(AccountForm, data)
        for data in CONTACTS:
            if not Contact.objects.filter(first_name=data["first_name"], last_name=data["last_name"]).exists():
                account = Account.objects.filter(name=data["account"]).first() if data["account"] else None
                self._save(ContactForm, {**data, "account": account.pk if account else None})
        for name, module, body in TEMPLATES:
            SmsTemplate.objects.get_or_create(name=name, defaults={"module": module, "body": body, "created_by": user})
        self.stdout.write(f"Demo data ready: {Account.objects.count()} accounts, {Contact.objects.count()} contacts, "
                          "user demo / demo.")

    def _save(self, form_class, data):
        form = form_class(data=data)
        if not form.is_valid():
            raise ValueError(f"demo record {data}: {form.errors.as_text()}")
        form.save()
