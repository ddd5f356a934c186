import logging

from django.db import DatabaseError, connection
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from crmsms.crm.models import Account, Contact
from crmsms.sms import states
from crmsms.sms.models import SmsMessage


@require_GET
def health(request):
    """Public: for load balancers and `make run`. Says whether the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok", "database": "ok"})
    except DatabaseError:
        # The details go to the log, not to an unauthenticated page.
        logging.getLogger(__name__).exception("health check: the database does not answer")
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)


def home(request):
    counts = dict(SmsMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
    return render(request, "web/home.html", {
        "contacts": Contact.objects.count(),
        "accounts": Account.objects.count(),
        "status_counts": [(s, label, counts.get(s, 0)) for s, label in states.CHOICES],
        "recent": SmsMessage.objects.select_related("contact", "account").order_by("-updated_at", "-id")[:10],
    })

