from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from crmsms.urls import urlpatterns as crmsms_urlpatterns


@csrf_exempt
def noop(request):
    return HttpResponse(b'{"status": "stored"}', content_type="application/json")


urlpatterns = [path("webhooks/bench-noop", noop), *crmsms_urlpatterns]
