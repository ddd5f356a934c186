"""memory:// keeps messages in a list in this process. For tests that run the sender in
the same process; `MemoryConnector.outbox` is what was sent."""

import threading
import uuid

from .base import Connector, Outcome, OutgoingSms


class MemoryConnector(Connector):
    name = "memory"
    outbox: list[OutgoingSms] = []
    _lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> Outcome:
        with self._lock:
            MemoryConnector.outbox.append(sms)
        return Outcome.accepted(f"mem-{uuid.uuid4().hex}")

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.outbox.clear()
