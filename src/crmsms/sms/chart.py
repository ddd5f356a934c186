"""A campaign's chart over time: how many of its messages became sent, delivered, failed...
in each period (an SMS retried after failing counts each time it fails), from the per-minute activity kept with every change (CampaignActivity), so
drawing it never reads the messages themselves."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import states
from .models import CampaignActivity, SmsCampaign
from .transitions import CHARTED

# Bar widths to choose from, in minutes: the smallest that keeps the chart to MAX_BARS.
STEPS = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080]
MAX_BARS = 60
HEIGHT = 120  # of the bars' area, in SVG units
BAR_WIDTH = 10
MIN_BARS = 30


@dataclass
class Bar:
    start: datetime
    x: int = 0  # in SVG units
    counts: dict[str, int] = field(default_factory=dict)
    # (status, y, height) of each stacked part, filled by `campaign_chart`
    parts: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Chart:
    bars: list[Bar]
    step: timedelta
    peak: int
    statuses: list[tuple[str, str]]  # (status, label) present, in CHARTED order
    height: int = HEIGHT

    @property
    def width(self) -> int:
        # Room for at least MIN_BARS: two bars are two bars, not two halves of the chart.
        return max(len(self.bars), MIN_BARS) * BAR_WIDTH

    @property
    def end(self) -> datetime:
        return self.bars[-1].start + self.step

    @property
    def step_label(self) -> str:
        minutes = int(self.step.total_seconds() // 60)
        for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
            if minutes % size == 0:
                n = minutes // size
                return f"{n} {unit}{'s' if n > 1 else ''}" if n > 1 else unit
        return f"{minutes} minutes"


def campaign_chart(campaign: SmsCampaign) -> Chart | None:
    rows = list(CampaignActivity.objects.filter(campaign=campaign).values_list("minute", "status", "n"))
    if not rows:
        return None
    first = min(minute for minute, _, _ in rows)
    last = max(minute for minute, _, _ in rows)
    span = int((last - first).total_seconds() // 60) + 1
    step = next((s for s in STEPS if span / s <= MAX_BARS), STEPS[-1])
    bars = [Bar(first + timedelta(minutes=i * step), x=i * BAR_WIDTH) for i in range(-(-span // step))]
    for minute, status, n in rows:
        bar = bars[int((minute - first).total_seconds() // 60) // step]
        bar.counts[status] = bar.counts.get(status, 0) + n
    peak = max(bar.total for bar in bars) or 1
    present = [s for s in CHARTED if any(s in bar.counts for bar in bars)]
    for bar in bars:
        y = float(HEIGHT)
        for status in present:
            height = HEIGHT * bar.counts.get(status, 0) / peak
            if height:
                y -= height
                bar.parts.append((status, round(y, 2), round(height, 2)))
    return Chart(bars, timedelta(minutes=step), peak, [(s, states.LABELS[s]) for s in present])
