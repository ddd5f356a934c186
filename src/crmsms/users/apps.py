from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "crmsms.users"
    label = "users"
    verbose_name = "Users"
