from django.apps import AppConfig


class SmsConfig(AppConfig):
    name = "crmsms.sms"
    label = "sms"
    verbose_name = "SMS"

    def ready(self) -> None:
        from . import signals, tasks  # noqa: F401  (register receivers and huey tasks)
