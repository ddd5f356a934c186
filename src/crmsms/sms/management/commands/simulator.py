"""`crmsms simulator`: run the HTTP provider simulator (crmsms.sms.simulator) in the
foreground. Point crmsms at it with CRMSMS_SMS_URL=simulator://[TOKEN@]HOST:PORT."""

import signal
import threading
from pathlib import Path
from types import FrameType

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crmsms.sms.simulator import SimulatorConfig, SimulatorServer, serve


def _stop(signum: int, frame: FrameType | None) -> None:
    # SIGTERM ends the process the same way as Ctrl-C: serve() closes the socket on the way out.
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run a fake SMS provider over HTTP, for tests, demos and benchmarks."
    # It needs neither the database nor the models: start even while they are broken.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9090, help="0 picks a free port")
        parser.add_argument("--latency-ms", type=float, default=0.0, help="added to each answer")
        parser.add_argument("--error-rate", type=float, default=0.0,
                            help="share of HTTP 500, message not accepted (0..1)")
        parser.add_argument("--throttle-rate", type=float, default=0.0,
                            help="share of HTTP 429 with Retry-After: 1, not accepted (0..1)")
        parser.add_argument("--timeout-rate", type=float, default=0.0,
                            help="share accepted and logged, then answered after --hang-seconds")
        parser.add_argument("--hang-seconds", type=float, default=30.0)
        parser.add_argument("--token", default=None,
                            help="require Authorization: Bearer TOKEN "
                            "(then CRMSMS_SMS_URL=simulator://TOKEN@host:port)")
        parser.add_argument("--log", type=Path, default=None,
                            help="JSONL of accepted messages "
                            "(default: $CRMSMS_DATA_DIR/simulator.jsonl)")
        parser.add_argument("--seed", type=int, default=None, help="repeatable random draws")
        parser.add_argument("--report-delay-ms", type=float, default=200.0,
                            help="delivery reports: 'sent' after this, the final one after twice this")
        parser.add_argument("--undelivered-rate", type=float, default=0.0,
                            help="share of final reports 'undelivered' (0..1)")
        parser.add_argument("--duplicate-report-rate", type=float, default=0.0,
                            help="share of final reports sent twice (0..1)")
        parser.add_argument("--out-of-order-rate", type=float, default=0.0,
                            help="share of final reports sent before 'sent' (0..1)")

    def handle(self, *args, **options) -> None:
        log_path = options["log"] or Path(settings.DATA_DIR) / "simulator.jsonl"
        try:
            config = SimulatorConfig(
                latency_ms=options["latency_ms"],
                error_rate=options["error_rate"],
                throttle_rate=options["throttle_rate"],
                timeout_rate=options["timeout_rate"],
                hang_seconds=options["hang_seconds"],
                token=options["token"],
                log_path=log_path.resolve(),
                seed=options["seed"],
                report_delay_ms=options["report_delay_ms"],
                undelivered_rate=options["undelivered_rate"],
                duplicate_report_rate=options["duplicate_report_rate"],
                out_of_order_rate=options["out_of_order_rate"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        def ready(server: SimulatorServer) -> None:
            address = f"http://{options['host']}:{server.port}"
            self.stdout.write(f"Simulator listening on {address} (log: {config.log_path})")
            self.stdout.flush()  # scripts wait for this line before sending

        # Signal handlers can only be set from the main thread (call_command may run elsewhere).
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _stop)
        try:
            serve(config, options["host"], options["port"], on_ready=ready)
        except KeyboardInterrupt:
            self.stdout.write("Simulator stopped.")
        except OSError as exc:  # address in use, permission denied...
            where = f"{options['host']}:{options['port']}"
            raise CommandError(f"Cannot listen on {where}: {exc}") from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
