"""The one state machine of an SMS message's status (DESIGN §1, §4).

Every status change in the code goes through `sms.transitions.move`, which only performs
the moves listed here, with a conditional UPDATE: the database, not the Python process,
decides whether a move still applies, so two workers (or two browser tabs) cannot both
make it.
"""

DRAFT = "draft"
TO_SEND = "to_send"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
UNKNOWN = "unknown"
SKIPPED = "skipped"
CANCELLED = "cancelled"

# Labels are the manual's words.
CHOICES = [
    (DRAFT, "Draft"),
    (TO_SEND, "To be sent"),
    (SENDING, "Sending"),
    (SENT, "Sent"),
    (DELIVERED, "Delivered"),
    (UNDELIVERED, "Undelivered"),
    (FAILED, "Failed"),
    (UNKNOWN, "Unknown"),
    (SKIPPED, "Skipped"),
    (CANCELLED, "Cancelled"),
]
LABELS = dict(CHOICES)

# status -> statuses it may move to. Nothing moves backwards: a late "sent" cannot undo
# "delivered", and "unknown" is never turned back into "to_send" (that could send twice);
# only a delivery report may still tell us what became of it.
TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({TO_SEND, CANCELLED, SKIPPED}),
    TO_SEND: frozenset({SENDING, SKIPPED, CANCELLED}),
    # sending -> to_send: the provider provably did not take it (retry later), or the
    # worker died before calling the provider.
    SENDING: frozenset({SENT, FAILED, UNKNOWN, TO_SEND, SKIPPED}),
    SENT: frozenset({DELIVERED, UNDELIVERED, UNKNOWN}),
    UNKNOWN: frozenset({SENT, DELIVERED, UNDELIVERED, FAILED}),
    DELIVERED: frozenset(),
    UNDELIVERED: frozenset(),
    # failed -> to_send: only when a person asks (« Retry failed ») and only for a failure
    # the provider proved it did not take (SmsMessage.retryable).
    FAILED: frozenset({TO_SEND}),
    SKIPPED: frozenset(),
    CANCELLED: frozenset(),
}

# Not sent yet and not being sent: what deleting a record or withdrawing consent stops.
WAITING = (DRAFT, TO_SEND)
# Where the system leaves a message for good (a failed one moves again only if a person
# asks for a retry).
FINAL = frozenset({DELIVERED, UNDELIVERED, FAILED, SKIPPED, CANCELLED})
# Messages a user may still stop.
CANCELLABLE = frozenset(s for s, targets in TRANSITIONS.items() if CANCELLED in targets)


def sources_of(target: str) -> frozenset[str]:
    """The statuses from which `target` may be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


class TransitionRefused(Exception):
    def __init__(self, message_id: int, current: str | None, target: str):
        self.message_id, self.current, self.target = message_id, current, target
        super().__init__(
            f"SMS {message_id} is {LABELS.get(current, current)!s}; "
            f"it cannot become {LABELS[target]}."
        )
