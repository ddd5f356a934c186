"""`crmsms run`: the whole product in one terminal: the web UI and the worker, as two
processes. Ctrl-C stops both: the worker finishes the sends in progress first; a second
Ctrl-C stops at once."""

import os
import secrets
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
        parser.add_argument("--port", type=int, default=os.environ.get("PORT", "8000"))
        parser.add_argument("--simulator", action="store_true",
                            help="also start the provider simulator, with delivery reports, and send through it")
        parser.add_argument("--simulator-port", type=int, default=9090)

    def handle(self, host, port, simulator, simulator_port, **options):
        cli = [sys.executable, "-m", "crmsms"]
        env = dict(os.environ)
        env.setdefault("CRMSMS_PUBLIC_URL", f"http://{host}:{port}")  # where delivery reports come back
        children, helpers = [], []
        provider = settings.CRMSMS_SMS_URL
        if simulator:
            # A token, so that its delivery reports are signed and can be checked.
            token = "demo-" + secrets.token_hex(8)
            provider = env["CRMSMS_SMS_URL"] = f"simulator://{token}@127.0.0.1:{simulator_port}"
            helpers.append(subprocess.Popen(
                [*cli, "simulator", "--port", str(simulator_port), "--token", token, "--latency-ms", "30"],
                start_new_session=True, env=env, stdout=subprocess.DEVNULL))
        # Their own sessions: a Ctrl-C in the terminal reaches only this process, which then
        # stops the children in order (the worker gracefully) instead of all at once.
        children += [
            subprocess.Popen([*cli, "serve", "--host", host, "--port", str(port)], start_new_session=True, env=env),
            subprocess.Popen([*cli, "worker"], start_new_session=True, env=env),
        ]
        children += helpers  # stopped last: the worker's sends in progress still reach it
        shown = provider.replace(provider.split("@")[0].removeprefix("simulator://"), "TOKEN") \
            if simulator else provider
        self.stdout.write(
            f"\n  crmsms is running: http://{host}:{port}/\n"
            f"  log in as demo / demo\n"
            f"  SMS provider: {shown}{' (the simulator: messages reach Delivered)' if simulator else ''}\n"
            f"  Ctrl-C stops everything.\n"
        )
        if simulator:
            # How to play a person answering (STOP, HELP, anything): the simulator signs it
            # like a provider would and calls the inbound webhook.
            self.stdout.write(
                f"  A reply from a contact (try STOP or HELP):\n"
                f"    curl -s -X POST http://127.0.0.1:{simulator_port}/admin/inbound -H 'Authorization: Bearer {token}' "
                f"-H 'Content-Type: application/json' -d '{{\"from\": \"+33612345678\", \"text\": \"HELP\", "
                f"\"callback_url\": \"{env['CRMSMS_PUBLIC_URL']}/webhooks/simulator/inbound/\"}}'\n")
        self.stdout.flush()
        signals = []

        def on_signal(signum, frame):
            signals.append(signum)
            if len(signals) > 1:  # asked twice: stop now
                for child in children:
                    if child.poll() is None:
                        child.kill()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not signals and all(child.poll() is None for child in children):
            time.sleep(0.2)
        if signals:
            self.stdout.write("Stopping: the worker finishes the SMS in progress (Ctrl-C again to stop now)...")
            self.stdout.flush()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.CRMSMS_LEASE_SECONDS + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("crmsms stopped.")
        if not signals:  # a child died on its own: say so through the exit code
            sys.exit(max((child.returncode or 0) for child in children) or 1)
