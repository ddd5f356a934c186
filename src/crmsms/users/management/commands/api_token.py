from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from crmsms.users.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (its last line is the token)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for")

    def handle(self, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}. Create one with: crmsms createsuperuser")
        raw = ApiToken.issue(user, name=name)
        self.stderr.write(f"API token for {username} (shown once; send it as 'Authorization: Bearer <token>'):")
        self.stdout.write(raw)
