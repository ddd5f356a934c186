"""SMS messages and their history."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from . import sending_hours, states, variables


class SmsTemplate(models.Model):
    """A reusable text, with variables of one module (the manual's « based on Contacts or
    Accounts »)."""

    name = models.CharField(max_length=100, unique=True)
    module = models.CharField("Based on", max_length=10, choices=list(variables.MODULES.items()))
    body = models.TextField("Message")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("sms:template_detail", args=[self.pk])


class SmsCampaign(models.Model):
    """One text sent to many contacts or accounts (the manual's SMS campaign). Its status
    moves only through `campaigns.move_campaign`."""

    DRAFT, GENERATE, GENERATING = "draft", "generate", "generating"
    SCHEDULED, SENDING, COMPLETED = "scheduled", "sending", "completed"
    PAUSED, CANCELLED = "paused", "cancelled"
    STATUSES = [
        (DRAFT, "Draft"), (GENERATE, "Generate all SMS Messages"), (GENERATING, "Generating"),
        (SCHEDULED, "Scheduled"), (SENDING, "Sending"), (COMPLETED, "Completed"),
        (PAUSED, "Paused"), (CANCELLED, "Cancelled"),
    ]
    SENDABLE = (SCHEDULED, SENDING)  # the dispatcher sends only these campaigns' messages

    name = models.CharField(max_length=150)
    send_at = models.DateTimeField("Date of dispatch")
    module = models.CharField("Associated module", max_length=10, choices=list(variables.MODULES.items()))
    template = models.ForeignKey(SmsTemplate, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="campaigns", verbose_name="Associated template")
    # The template's text as it was when generation started: every message of the campaign
    # is made from this one text, even if the template changes meanwhile.
    body = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=STATUSES, default=DRAFT)
    # Generation progress: the last recipient id done, and the counts so far. Written with
    # each batch of messages, in the same transaction, so a crash resumes exactly there.
    cursor = models.BigIntegerField(default=0)
    recipients_total = models.PositiveIntegerField(default=0)
    generated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    heartbeat = models.DateTimeField(null=True, blank=True)  # a generating worker is alive
    # Sending hours, in each recipient's time zone (sms/sending_hours.py). Days are
    # date.weekday() digits: "012345" is Monday to Saturday.
    respect_hours = models.BooleanField("Only during sending hours", default=sending_hours.on_by_default)
    hours_start = models.TimeField("From", default=sending_hours.default_start)
    hours_end = models.TimeField("Until", default=sending_hours.default_end)
    hours_days = models.CharField("Days", max_length=7, default=sending_hours.default_days)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-send_at", "-id"]
        indexes = [models.Index(fields=["status"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("sms:campaign_detail", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        return self.status == self.DRAFT

    @property
    def sending_hours(self) -> sending_hours.SendingHours | None:
        if not self.respect_hours:
            return None
        return sending_hours.SendingHours(self.hours_start, self.hours_end, frozenset(int(d) for d in self.hours_days))


class CampaignCount(models.Model):
    """How many of a campaign's messages are in one status. Kept up to date in the same
    transaction as every change (generation's inserts, transitions.move_each), so a
    campaign of a million messages shows its figures without counting its messages."""

    campaign = models.ForeignKey(SmsCampaign, on_delete=models.CASCADE, related_name="counts")
    status = models.CharField(max_length=12, choices=states.CHOICES)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "status"], name="campaign_count_unique")]


class CampaignActivity(models.Model):
    """How many of a campaign's messages reached a status in one minute: the campaign's
    chart over time, kept with the counts (transitions.add_counts)."""

    campaign = models.ForeignKey(SmsCampaign, on_delete=models.CASCADE, related_name="activity")
    minute = models.DateTimeField()
    status = models.CharField(max_length=12, choices=states.CHOICES)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "minute", "status"], name="campaign_activity_unique")]


class CampaignRecipient(models.Model):
    # Indexed with the id below: generation reads a campaign's recipients in id order, a
    # batch at a time, and that index serves it whatever the planner's statistics say (a
    # PostgreSQL table of a million fresh rows not analysed yet made each batch a scan).
    campaign = models.ForeignKey(SmsCampaign, on_delete=models.CASCADE, related_name="recipients", db_index=False)
    contact = models.ForeignKey("crm.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("crm.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], condition=Q(contact__isnull=False),
                                    name="recipient_unique_contact"),
            models.UniqueConstraint(fields=["campaign", "account"], condition=Q(account__isnull=False),
                                    name="recipient_unique_account"),
            models.CheckConstraint(condition=Q(contact__isnull=True, account__isnull=False)
                                   | Q(contact__isnull=False, account__isnull=True), name="recipient_one_record"),
        ]
        indexes = [models.Index(fields=["campaign", "id"], name="recipient_campaign_idx")]


class SmsMessage(models.Model):
    # The record it is sent to: exactly one of the two while the record exists. When the
    # record is deleted the message stays (history), with the recipient's name and number
    # kept in the snapshot fields below.
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="sms_messages"
    )
    account = models.ForeignKey(
        "crm.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="sms_messages"
    )
    recipient_name = models.CharField(max_length=250, blank=True)
    to_number = models.CharField(max_length=20, blank=True)  # E.164, set when queued

    # What the user wrote, variables included, and what leaves: `text` is `body` rendered for
    # this recipient, stored when the message is queued (a draft keeps its latest preview),
    # so the text sent is exactly the one the preview showed.
    body = models.TextField()
    text = models.TextField(blank=True)
    template = models.ForeignKey(SmsTemplate, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="messages")
    # Indexed below together with the id (and the status), for a campaign's pages.
    campaign = models.ForeignKey(SmsCampaign, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="messages", db_index=False)
    encoding = models.CharField(max_length=10, blank=True)  # of `text`: "GSM-7" or "UCS-2"
    segments = models.PositiveSmallIntegerField(default=0)

    status = models.CharField(max_length=12, choices=states.CHOICES, default=states.DRAFT)
    send_at = models.DateTimeField("Sending date", default=timezone.now)
    # When the dispatcher may next pick it up: send_at at first, later after a retry backoff.
    due_at = models.DateTimeField(default=timezone.now)

    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)  # which claim holds the lease
    # Set, and committed, just before the provider is called: a message whose lease ends
    # with this set may have reached the provider and becomes "unknown"; without it, the
    # provider was never called and it is safe to queue again.
    calling_at = models.DateTimeField(null=True, blank=True)

    provider = models.CharField(max_length=30, blank=True)
    provider_message_id = models.CharField(max_length=100, null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    # A failure the provider proved it did not take the message for, and that is not about
    # the recipient (gave up after retries; credentials or credit): « Retry failed » may
    # queue it again without any risk of sending twice.
    retryable = models.BooleanField(default=False)

    # The SMS a person sent us that this one answers (the automatic HELP reply): it goes to
    # their number, opted out or not, since it answers their own request (sms/inbound.py).
    reply_to = models.ForeignKey("InboundSms", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="answers")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Optimistic locking: an edit carries the version it started from, so two tabs
    # saving the same message cannot silently overwrite each other.
    version = models.PositiveIntegerField(default=1)
    # The API client's Idempotency-Key: a retried request finds the message it created.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        ordering = ["-send_at", "-id"]
        indexes = [
            # Due messages in the order they are claimed (due_at, id): a campaign's share one
            # due_at, and without the id PostgreSQL sorted a million of them for each claim.
            models.Index(fields=["status", "due_at", "id"], name="sms_due_idx"),
            # Messages sent from a record (not a campaign's) due: claimed first, found here
            # without walking a campaign's million due messages. (No status in the condition:
            # SQLite uses a partial index only if the query repeats its condition literally,
            # and a status comes as a query parameter.)
            models.Index(fields=["status", "due_at", "id"], condition=Q(campaign__isnull=True),
                         name="sms_due_single_idx"),
            models.Index(fields=["status", "lease_until"], name="sms_lease_idx"),
            # A campaign's messages in order, all of them or those of one status: its pages
            # read 25 at a time from these without sorting a million rows.
            models.Index(fields=["campaign", "id"], name="sms_campaign_idx"),
            models.Index(fields=["campaign", "status", "id"], name="sms_campaign_status_idx"),
            # « Retry failed (N) »: counted from this small index, not from the failed rows.
            models.Index(fields=["campaign"], condition=Q(status="failed", retryable=True), name="sms_retryable_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=True) | Q(account__isnull=True),
                name="sms_one_parent",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="sms_unique_provider_id",
            ),
            # One message per (campaign, recipient): generating twice cannot send twice.
            models.UniqueConstraint(fields=["campaign", "contact"], condition=Q(campaign__isnull=False),
                                    name="sms_one_per_campaign_contact"),
            models.UniqueConstraint(fields=["campaign", "account"], condition=Q(campaign__isnull=False),
                                    name="sms_one_per_campaign_account"),
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="sms_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"SMS {self.pk} to {self.recipient_name or self.to_number}"

    def get_absolute_url(self) -> str:
        return reverse("sms:message_detail", args=[self.pk])

    @property
    def record(self):
        return self.contact or self.account

    @property
    def status_label(self) -> str:
        return states.LABELS[self.status]

    @property
    def is_editable(self) -> bool:
        return self.status == states.DRAFT

    @property
    def is_cancellable(self) -> bool:
        return self.status in states.CANCELLABLE

    @property
    def waits_until(self):
        """When a queued message that waits past its sending date may leave (its campaign's
        sending hours in the recipient's time zone, or the next attempt after a refusal to
        retry); None when it leaves at its sending date."""
        if self.status == states.TO_SEND and self.due_at > max(self.send_at, timezone.now()):
            return self.due_at
        return None

    @property
    def waits_for(self) -> str:
        if self.attempts:
            return "the next attempt"
        return "the campaign's sending hours, in the recipient's time zone"


class MessageEvent(models.Model):
    """One line of a message's history: created, queued, each attempt, the outcome."""

    message = models.ForeignKey(SmsMessage, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=150, blank=True)  # a username, or "worker"

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}"


class DeliveryReport(models.Model):
    """A provider's delivery report, stored as it came (the webhook only verifies and
    stores, so it answers in milliseconds and loses nothing under a flood); the worker then
    applies it to its message (sms/reports.py)."""

    provider = models.CharField(max_length=30)
    reference = models.CharField(max_length=100, blank=True)  # ours: crmsms-<message id>
    provider_message_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=30)  # the provider's word
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey(SmsMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    outcome = models.CharField(max_length=200, blank=True)  # what applying it did

    class Meta:
        indexes = [models.Index(fields=["id"], condition=Q(processed_at__isnull=True), name="report_pending_idx")]


class InboundSms(models.Model):
    """An SMS a person sent us (a reply): shown on the timeline of every contact and
    account with its number; a STOP, START or HELP word acts on it (sms/inbound.py)."""

    provider = models.CharField(max_length=30)
    provider_message_id = models.CharField(max_length=100, blank=True)
    from_number = models.CharField(max_length=20, db_index=True)  # E.164
    to_number = models.CharField(max_length=20, blank=True)  # our number
    text = models.TextField()
    keyword = models.CharField(max_length=10, blank=True)  # "stop", "start", "help" or ""
    received_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["-received_at", "-id"]
        # A provider's retry of the same SMS is the same SMS (sms/inbound.py).
        constraints = [models.UniqueConstraint(fields=["provider", "provider_message_id"],
                                               condition=~Q(provider_message_id=""), name="inbound_unique_provider_id")]


class ProviderPause(models.Model):
    """A provider account whose errors spiked: the workers stop calling it until `until`,
    then try again by themselves (sms/breaker.py). Kept in the database so every worker and
    the web pages see it."""

    account = models.CharField(max_length=200, unique=True)  # scheme://user@host:port, no secret
    until = models.DateTimeField()
    reason = models.TextField()
    opened_at = models.DateTimeField(default=timezone.now)
    times = models.PositiveIntegerField(default=1)  # pauses in a row: each one twice as long

    def __str__(self) -> str:
        return f"{self.account} paused until {self.until:%H:%M:%S}"


class WorkerLease(models.Model):
    """A job that only one worker may run at a time (the periodic jobs): held by `holder`
    until `until`, renewed while it runs, taken over by another worker once it lapses."""

    name = models.CharField(max_length=50, unique=True)
    holder = models.CharField(max_length=200)
    until = models.DateTimeField()
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder}"
