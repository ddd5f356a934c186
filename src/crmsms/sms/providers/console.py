"""console:// prints each message on standard output. For trying crmsms out."""

import sys
import uuid

from .base import Connector, Outcome, OutgoingSms


class ConsoleConnector(Connector):
    name = "console"

    def send(self, sms: OutgoingSms) -> Outcome:
        print(f"SMS to {sms.to} [{sms.reference}]: {sms.body}", file=sys.stdout, flush=True)
        return Outcome.accepted(f"console-{uuid.uuid4().hex}")
