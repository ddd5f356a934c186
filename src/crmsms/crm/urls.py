from django.urls import path

from . import views

app_name = "crm"

urlpatterns = []
for module, singular in (("contacts", "contact"), ("accounts", "account")):
    kw = {"module": module}
    urlpatterns += [
        path(f"{module}/", views.record_list, kw, name=module),
        path(f"{module}/new/", views.record_edit, kw, name=f"{singular}_create"),
        path(f"{module}/import/", views.record_import, kw, name=f"{module}_import"),
        path(f"{module}/<int:pk>/", views.record_detail, kw, name=f"{singular}_detail"),
        path(f"{module}/<int:pk>/edit/", views.record_edit, kw, name=f"{singular}_edit"),
        path(f"{module}/<int:pk>/delete/", views.record_delete, kw, name=f"{singular}_delete"),
    ]
