"""Sending hours: when a campaign may text people, in each recipient's own time zone.

A campaign can keep its SMS to, say, 08:00–20:00 except on Sundays. The time zone is the
recipient's, worked out from the number (a +33 number is in Europe/Paris, a +1 415 one in
America/Los_Angeles); when a number spans several zones, a time must be allowed in all of
them. A message due outside the hours waits for the next allowed time: generation sets its
due date so, and the worker checks again just before sending (a paused campaign resumed at
night, or a retry, must not text anyone at 3 a.m.).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from phonenumbers import timezone as number_zones
from phonenumbers import tzdata

DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]  # date.weekday() order
DAY_LABELS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# phonenumbers finds a number's time zones from its first digits (country code included),
# at most this many (phonenumbers.tzdata.TIMEZONE_LONGEST_PREFIX; a test watches it): two
# numbers that share them share their zones, so zones are looked up once per prefix.
ZONE_PREFIX_DIGITS = 9


@dataclass(frozen=True)
class SendingHours:
    start: time
    end: time  # not included: 08:00-20:00 allows 19:59, not 20:00
    days: frozenset[int]  # date.weekday(): Monday 0 .. Sunday 6

    def __str__(self) -> str:
        """ "08:00–20:00, Mon–Sat" """
        return f"{self.start:%H:%M}–{self.end:%H:%M}, {describe_days(self.days)}"

    def next_allowed(self, when: datetime, zones: tuple[str, ...]) -> datetime:
        """The first moment at or after `when` allowed in every one of `zones`. When they
        never all agree (an Australian mobile may be anywhere from UTC+6:30 to UTC+11: a
        two-hour window has no moment that suits all), the most zones that do agree,
        neighbours in UTC offset, decide."""
        agreed = self._agreed(when, zones)
        if agreed is not None:
            return agreed
        by_offset = sorted(zones, key=lambda zone: when.astimezone(ZoneInfo(zone)).utcoffset())
        for size in range(len(by_offset) - 1, 0, -1):
            found = [t for i in range(len(by_offset) - size + 1)
                     if (t := self._agreed(when, tuple(by_offset[i:i + size]))) is not None]
            if found:
                return min(found)
        return when  # unreachable: one zone always agrees with itself

    def _agreed(self, when: datetime, zones: tuple[str, ...]) -> datetime | None:
        # Each zone pushes the candidate to its next allowed time; when none pushes any
        # more, it is allowed everywhere. A few rounds settle it, or nothing ever will.
        candidate = when
        for _ in range(2 * len(zones) + 2):
            pushed = max(self._next_in(candidate, ZoneInfo(zone)) for zone in zones)
            if pushed == candidate:
                return candidate
            candidate = pushed
        return None

    def _next_in(self, when: datetime, zone: ZoneInfo) -> datetime:
        local = when.astimezone(zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            # Compared in UTC: aware datetimes of the same zone compare their wall clocks,
            # which is wrong across a change of offset.
            opens = datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)
            if when < closes:
                return max(when, opens)
        return when  # no day allowed at all: forms refuse that, so never here


def describe_days(days: frozenset[int]) -> str:
    """{0, 1, 2, 3, 4, 5} -> "Mon–Sat"; {0, 2, 6} -> "Mon, Wed, Sun"."""
    if len(days) == 7:
        return "every day"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    short = [label[:3] for label in DAY_LABELS]
    return ", ".join(f"{short[r[0]]}–{short[r[-1]]}" if len(r) > 2 else ", ".join(short[d] for d in r)
                     for r in runs)


def _one_zone_countries() -> dict[str, tuple[str, ...]]:
    """Country calling codes whose numbers all share their zones (+33: Europe/Paris): for
    those, the zones come from the code alone, without parsing the number."""
    data = tzdata.TIMEZONE_DATA
    longer = {key[:n] for key in data for n in range(1, 4) if len(key) > n}
    return {code: tuple(data[code]) for code in map(str, phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
            if code in data and code not in longer and number_zones.UNKNOWN_TIMEZONE not in data[code]}


_ONE_ZONE = _one_zone_countries()


def zones_for(number: str) -> tuple[str, ...]:
    """The time zones of an E.164 number; the server's default zone when unknown."""
    for length in (1, 2, 3):  # a country calling code is 1 to 3 digits, and prefix-free
        zones = _ONE_ZONE.get(number[1:1 + length])
        if zones:
            return zones
    prefix = number[:1 + ZONE_PREFIX_DIGITS]
    zones = _ZONES.get(prefix)
    if zones is None:
        if len(_ZONES) > 100_000:
            _ZONES.clear()
        zones = _ZONES[prefix] = _compute_zones(number)
    return zones or (settings.CRMSMS_DEFAULT_TIME_ZONE,)


_ZONES: dict[str, tuple[str, ...]] = {}  # prefix -> zones, () when phonenumbers does not know


def _compute_zones(number: str) -> tuple[str, ...]:
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        zones = ()
    return tuple(z for z in zones if z != number_zones.UNKNOWN_TIMEZONE)


def parse_window(text: str, *, name: str = "CRMSMS_SENDING_HOURS") -> tuple[time, time] | None:
    """ "08:00-20:00" -> (08:00, 20:00); "" -> None."""
    if not text.strip():
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={text!r}: write the hours as HH:MM-HH:MM, e.g. 08:00-20:00.") from None
    if not start < end:
        raise ImproperlyConfigured(f"{name}={text!r}: the start must be before the end.")
    return start, end


def parse_days(text: str, *, name: str = "CRMSMS_SENDING_DAYS") -> frozenset[int]:
    """ "mon,tue,sat" -> {0, 1, 5}."""
    days = set()
    for word in text.replace(" ", "").lower().split(","):
        if word not in DAY_NAMES:
            raise ImproperlyConfigured(f"{name}={text!r}: {word!r} is not one of {', '.join(DAY_NAMES)}.")
        days.add(DAY_NAMES.index(word))
    return frozenset(days)


# When CRMSMS_SENDING_HOURS is "", campaigns start without sending hours, and these are
# what the form offers if a user turns them on.
FALLBACK = "08:00-20:00"


def default() -> SendingHours:
    """A new campaign's sending hours, from the settings."""
    window = parse_window(settings.CRMSMS_SENDING_HOURS) or parse_window(FALLBACK)
    return SendingHours(*window, parse_days(settings.CRMSMS_SENDING_DAYS))


def on_by_default() -> bool:
    return parse_window(settings.CRMSMS_SENDING_HOURS) is not None


# Model field defaults (a new campaign, however it is created, starts with the settings').
def default_start() -> time:
    return default().start


def default_end() -> time:
    return default().end


def default_days() -> str:
    return "".join(str(d) for d in sorted(default().days))
