"""Logging filters named in settings.LOGGING."""

import logging
import time


class AtMostEvery(logging.Filter):
    """Let one record through every `seconds`, and count the ones held back. Waitress warns
    "Task queue depth is N" for every request that waits for a thread: under load, thousands
    of lines saying one thing (the server is saturated)."""

    def __init__(self, seconds: float = 10.0):
        super().__init__()
        self.seconds = seconds
        self.last = float("-inf")
        self.held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            self.held += 1
            return False
        if self.held:
            record.msg = f"{record.msg} (and {self.held} more such lines in the last {now - self.last:.0f} s)"
        self.last, self.held = now, 0
        return True
