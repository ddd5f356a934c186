"""`crmsms run`: the whole product in one terminal: the web UI and the worker, as two
processes. Ctrl-C stops both."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web UI and the worker together (Ctrl-C stops both)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, host, port, **options):
        cli = [sys.executable, "-m", "crmsms"]
        children = [
            subprocess.Popen([*cli, "serve", "--host", host, "--port", str(port)]),
            subprocess.Popen([*cli, "worker"]),
        ]
        self.stdout.write(
            f"\n  crmsms is running: http://{host}:{port}/\n"
            f"  log in as demo / demo\n"
            f"  SMS provider: {settings.CRMSMS_SMS_URL}\n"
            f"  Ctrl-C stops the web UI and the worker.\n"
        )
        self.stdout.flush()
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        code = max((child.returncode or 0) for child in children)
        self.stdout.write("crmsms stopped.")
        if code and not stopping:
            sys.exit(code)
