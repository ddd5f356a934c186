"""file:///path/outbox.jsonl appends each message as one JSON line: a provider that needs
no account, for the demo and for anyone checking what would have left."""

import fcntl
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .base import Connector, Outcome, OutgoingSms


class FileConnector(Connector):
    name = "file"
    sends_whole_batches = True  # one locked write per batch

    def __init__(self, url) -> None:
        super().__init__(url)
        if not url.path:
            raise ValueError("file:// needs a path, e.g. file:///var/crmsms/outbox.jsonl")
        self.path = Path(url.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def send_batch(self, batch: list[OutgoingSms]) -> list[Outcome]:
        outcomes, lines = [], []
        now = datetime.now(UTC).isoformat()
        for sms in batch:
            provider_id = f"file-{uuid.uuid4().hex}"
            outcomes.append(Outcome.accepted(provider_id))
            lines.append(json.dumps({
                "id": provider_id, "reference": sms.reference, "to": sms.to,
                "body": sms.body, "at": now,
            }, ensure_ascii=False))
        # One write per batch, under an exclusive lock: several workers share the file.
        with open(self.path, "a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return outcomes

    def send(self, sms: OutgoingSms) -> Outcome:
        return self.send_batch([sms])[0]
