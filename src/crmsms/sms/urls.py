from django.urls import path

from . import template_views, views

app_name = "sms"

urlpatterns = [
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
