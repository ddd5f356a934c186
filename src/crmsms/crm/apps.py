from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crmsms.crm"
    label = "crm"
    verbose_name = "CRM"

    def ready(self):
        from . import consent

        consent.connect()
