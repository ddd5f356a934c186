from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from crmsms.api.routes import api
from crmsms.sms import webhooks
from crmsms.users import login
from crmsms.users import views as users
from crmsms.web import views as web

urlpatterns = [
    path("", web.home, name="home"),
    path("health", web.health, name="health"),
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("preferences/", users.preferences, name="preferences"),
    path("api/v1/", api.urls),
    path("webhooks/simulator/", webhooks.simulator_report, name="webhook_simulator"),
    path("webhooks/simulator/inbound/", webhooks.simulator_inbound, name="webhook_simulator_inbound"),
    path("webhooks/twilio/status", webhooks.twilio_status, name="webhook_twilio_status"),
    path("webhooks/twilio/inbound", webhooks.twilio_inbound, name="webhook_twilio_inbound"),
    path("webhooks/vonage/dlr", webhooks.vonage_dlr, name="webhook_vonage_dlr"),
    path("webhooks/vonage/inbound", webhooks.vonage_inbound, name="webhook_vonage_inbound"),
    path("webhooks/kannel/dlr", webhooks.kannel_dlr, name="webhook_kannel_dlr"),
    path("webhooks/kannel/inbound", webhooks.kannel_inbound, name="webhook_kannel_inbound"),
    path("admin/", admin.site.urls),
    path("", include("crmsms.crm.urls")),
    path("", include("crmsms.sms.urls")),
]
