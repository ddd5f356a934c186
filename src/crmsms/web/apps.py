from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "crmsms.web"
    label = "web"
    verbose_name = "Web UI"
