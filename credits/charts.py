"""The geometry of the credits page's bar chart, computed here so that it can be tested; the
template only writes it out as inline SVG (no script, no external asset)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from credits.money import credits_text

# The drawing's own units: the SVG scales to its container through its viewBox.
WIDTH = 600
HEIGHT = 200
LEFT = 88  # room for the amounts on the left ("100,000.00")
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the dates below
GAP = 0.25  # of each day's slot, left empty between bars


@dataclass(frozen=True)
class Bar:
    day: date
    amount: int
    x: float
    y: float
    width: float
    height: float

    @property
    def refund(self) -> bool:
        """More came back than was charged that day: the bar hangs below the zero line."""
        return self.amount < 0


@dataclass(frozen=True)
class Label:
    text: str
    x: float
    y: float
    anchor: str  # SVG text-anchor: start, middle or end


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    baseline: float  # the y of zero
    y_labels: list[Label]
    x_labels: list[Label]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height}"

    @property
    def total(self) -> int:
        return sum(bar.amount for bar in self.bars)

    @property
    def first_day(self) -> date | None:
        return self.bars[0].day if self.bars else None

    @property
    def last_day(self) -> date | None:
        return self.bars[-1].day if self.bars else None


def _day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def bar_chart(days: Sequence[tuple[date, int]]) -> BarChart:
    """One bar per (day, amount), oldest on the left, scaled so the largest fills the plot.

    Bars rise from the zero line for positive amounts and hang below it for negative ones; a
    zero day is a bar of no height, so every day keeps its place.
    """
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    amounts = [amount for _, amount in days]
    high = max([0, *amounts])
    low = min([0, *amounts])
    # All zero (or no days): nothing to scale, and the zero line sits at the bottom.
    scale = plot_height / (high - low) if high != low else 0.0
    baseline = TOP + high * scale if high != low else TOP + plot_height
    slot = plot_width / max(len(days), 1)
    bar_width = slot * (1 - GAP)
    bars = []
    for n, (day, amount) in enumerate(days):
        height = abs(amount) * scale
        bars.append(
            Bar(
                day=day,
                amount=amount,
                x=round(LEFT + n * slot + (slot - bar_width) / 2, 2),
                y=round(baseline - height if amount > 0 else baseline, 2),
                width=round(bar_width, 2),
                height=round(height, 2),
            )
        )
    # Amounts at the top, the zero line and the bottom; +4 centres a 12-unit digit on its line.
    y_labels = [Label(credits_text(0), LEFT - 6, round(baseline + 4, 2), "end")]
    if high > 0:
        y_labels.insert(0, Label(credits_text(high), LEFT - 6, TOP + 4, "end"))
    if low < 0:
        y_labels.append(Label(credits_text(low), LEFT - 6, TOP + plot_height + 4, "end"))
    x_labels = []
    if days:
        below = HEIGHT - 8
        x_labels.append(Label(_day_label(days[0][0]), LEFT, below, "start"))
        if len(days) > 2:
            middle = len(days) // 2
            x_labels.append(
                Label(
                    _day_label(days[middle][0]),
                    round(LEFT + (middle + 0.5) * slot, 2),
                    below,
                    "middle",
                )
            )
        if len(days) > 1:
            x_labels.append(Label(_day_label(days[-1][0]), WIDTH - RIGHT, below, "end"))
    return BarChart(bars=bars, baseline=round(baseline, 2), y_labels=y_labels, x_labels=x_labels)
