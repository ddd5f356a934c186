"""`crmsms serve`: the web UI with a production WSGI server (waitress), not runserver."""

import os
import signal

from django.core.management.base import BaseCommand
from waitress import serve

from crmsms.wsgi import application


class Command(BaseCommand):
    help = "Serve the web UI and the API."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, host, port, threads, **options):
        self.stdout.write(f"Web UI on http://{host}:{port}/")
        self.stdout.flush()
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            serve(application, host=host, port=port, threads=threads, ident="crmsms")
        except KeyboardInterrupt:
            self.stdout.write("Web UI stopped.")


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends the server the way Ctrl-C does
