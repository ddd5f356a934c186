"""`crmsms serve`: the web UI and the API with a production WSGI server (waitress), not
runserver. `--processes P` runs P servers on one listening socket, for P cores."""

import os
import signal
import socket

from django.core.management.base import BaseCommand
from waitress import serve

from crmsms.processes import supervise
from crmsms.wsgi import application


class Command(BaseCommand):
    help = "Serve the web UI and the API."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=os.environ.get("PORT", "8000"))
        # A default given as a string goes through `type` too: a bad variable is refused by
        # argparse, naming the option, instead of a traceback.
        parser.add_argument("--threads", type=int, default=os.environ.get("CRMSMS_SERVE_THREADS", "8"),
                            help="threads per process, each serving one request at a time "
                                 "(default 8, or CRMSMS_SERVE_THREADS)")
        parser.add_argument("--processes", type=int, default=os.environ.get("CRMSMS_SERVE_PROCESSES", "1"),
                            help="server processes sharing the port (default 1, or CRMSMS_SERVE_PROCESSES): "
                                 "one process uses one core, since Python runs one thread at a time")
        parser.add_argument("--socket-fd", type=int, help="(internal) serve on this inherited listening socket")

    def handle(self, host, port, threads, processes, socket_fd, **options):
        for name, value in (("--threads", threads), ("--processes", processes)):
            if value < 1:
                self.stderr.write(f"{name}: at least 1 (got {value}).")
                raise SystemExit(2)
        if socket_fd is not None:
            return self._serve(socket.socket(fileno=socket_fd), threads)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET  # HOST=:: or ::1 too
        listening = socket.create_server((host, port), family=family, backlog=1024)
        self.stdout.write(f"Web UI on http://{f'[{host}]' if ':' in host else host}:{port}/")
        self.stdout.flush()
        if processes == 1:
            return self._serve(listening, threads)
        # Bound once here, inherited by every process: the kernel hands each new connection
        # to one of them.
        listening.set_inheritable(True)
        fd = listening.fileno()
        supervise(processes, ["serve", "--socket-fd", str(fd), "--threads", str(threads)], self.stdout,
                  pass_fds=(fd,))
        self.stdout.write("Web UI stopped.")

    def _serve(self, listening: socket.socket, threads: int) -> None:
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            serve(application, sockets=[listening], threads=threads, ident="crmsms")
        except KeyboardInterrupt:
            self.stdout.write("Web UI stopped.")


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends the server the way Ctrl-C does
