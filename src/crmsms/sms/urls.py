from django.urls import path

from . import campaign_views, template_views, views

app_name = "sms"

urlpatterns = [
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_views.campaign_edit, name="campaign_create"),
    path("campaigns/<int:pk>/", campaign_views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", campaign_views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/delete/", campaign_views.campaign_delete, name="campaign_delete"),
    path("campaigns/<int:pk>/recipients/", campaign_views.campaign_recipients, name="campaign_recipients"),
    path("campaigns/<int:pk>/action/", campaign_views.campaign_action, name="campaign_action"),
    path("campaigns/<int:pk>/import/", campaign_views.campaign_import, name="campaign_import"),
    path("templates/", template_views.template_list, name="templates"),
    path("templates/new/", template_views.template_edit, name="template_create"),
    path("templates/<int:pk>/", template_views.template_detail, name="template_detail"),
    path("templates/<int:pk>/edit/", template_views.template_edit, name="template_edit"),
    path("templates/<int:pk>/delete/", template_views.template_delete, name="template_delete"),
    path("templates/<int:pk>/duplicate/", template_views.template_duplicate, name="template_duplicate"),
    path("sms/preview/", template_views.preview, name="preview"),
    path("sms/", views.message_list, name="messages"),
    path("sms/<int:pk>/", views.message_detail, name="message_detail"),
    path("sms/<int:pk>/edit/", views.message_edit, name="message_edit"),
    path("sms/<int:pk>/cancel/", views.message_cancel, name="message_cancel"),
    path("sms/<int:pk>/send/", views.message_send, name="message_send"),
    path("sms/<int:pk>/resolve/", views.message_resolve, name="message_resolve"),
    path("sms/<int:pk>/copy/", views.message_copy, name="message_copy"),
    path("contacts/<int:pk>/sms/new/", views.message_create, {"module": "contacts"}, name="contact_message_create"),
    path("accounts/<int:pk>/sms/new/", views.message_create, {"module": "accounts"}, name="account_message_create"),
]
