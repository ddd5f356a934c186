"""Several copies of one command on this machine, kept running: `crmsms worker --processes`
and `crmsms serve --processes`. One Python process runs one thread at a time, so it uses one
core; more cores take more processes."""

import logging
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("crmsms.processes")


def supervise(processes: int, args: list[str], out, pass_fds: tuple[int, ...] = ()) -> None:
    """Run `processes` copies of `crmsms ARGS` and keep them running: one killed or crashed
    is started again; SIGTERM or Ctrl-C is passed on to all of them, which stop as one does,
    and this returns once they all stopped. `pass_fds` are inherited (a listening socket)."""
    command = [sys.executable, "-m", "crmsms", *args]
    stopping = threading.Event()  # set by a signal handler; only read in this thread

    def start() -> subprocess.Popen:
        # Their own session: a Ctrl-C in the terminal reaches only this process, which passes
        # it on once (a worker takes a second one as "stop now").
        return subprocess.Popen(command, pass_fds=pass_fds, start_new_session=True)

    children = [start() for _ in range(processes)]

    def pass_on(signum, frame):
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    out.write(f"crmsms {args[0]}: {processes} processes ({', '.join(str(c.pid) for c in children)})", ending="\n")
    out.flush()
    while True:
        for index, child in enumerate(children):
            if child.poll() is not None and not stopping.is_set():
                log.warning("%s process %s ended (exit %s); starting another", args[0], child.pid, child.returncode)
                children[index] = start()
        if stopping.is_set() and all(child.poll() is not None for child in children):
            return
        time.sleep(0.2 if stopping.is_set() else 0.5)
