"""The pages' charts as geometry for inline SVG: the gantt chart and the metrics bars.

Nothing here writes markup: the templates draw these shapes, so every piece of
user text goes through the templates' escaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs

__all__ = ["BarChart", "Gantt", "bar_chart", "gantt_chart"]

#: Width of the label column and of the plot, in SVG units.
_LABEL_WIDTH = 280
_PLOT_WIDTH = 620
_ROW = 24
_TOP = 28
_TICKS = 5


@attrs.frozen
class GanttRow:
    """A row of the gantt chart: a section heading, a phase bar or a milestone."""

    y: int
    label: str
    kind: str  # "section", "bar" or "milestone"
    x: float = 0.0
    width: float = 0.0
    tags: tuple[str, ...] = ()
    start: str = ""
    end: str = ""

    @property
    def css(self) -> str:
        """The classes of its shape: ``done``, ``active`` or ``crit``."""
        return " ".join(t for t in self.tags if t in ("done", "active", "crit")) or "done"


@attrs.frozen
class Tick:
    """A time on the axis."""

    x: float
    label: str


@attrs.frozen
class Gantt:
    """The gantt chart of an incident, laid out.

    Attributes:
        title: The chart's title line.
        rows: Its rows, top to bottom.
        ticks: The times on its axis.
        width: The drawing's width.
        height: The drawing's height.
        label_width: Where the plot starts.

    """

    title: str
    rows: tuple[GanttRow, ...]
    ticks: tuple[Tick, ...]
    width: int
    height: int
    label_width: int = _LABEL_WIDTH


def _task(line: str) -> tuple[str, tuple[str, ...], datetime, datetime] | None:
    """A Mermaid task line ``name :tags, start, end`` read back; None if it is not one."""
    name, colon, data = line.strip().partition(" :")
    if not colon:
        return None
    parts = [part.strip() for part in data.split(",")]
    if len(parts) < 2:
        return None
    try:
        start, end = (datetime.fromisoformat(p).replace(tzinfo=UTC) for p in parts[-2:])
    except ValueError:
        return None
    return name, tuple(parts[:-2]), start, end


def gantt_chart(mermaid: str) -> Gantt:
    """Lay out the chart of :func:`incidentflow.render.incident_gantt`'s Mermaid text.

    The Mermaid source is the one rendering of the phases; this reads its
    sections and tasks back and places them on a time axis, so the page draws
    the same chart as the post-mortem's.
    """
    title = ""
    entries: list[tuple[str, str, tuple[str, ...], datetime | None, datetime | None]] = []
    for line in mermaid.splitlines():
        stripped = line.strip()
        if stripped.startswith("title "):
            title = stripped.removeprefix("title ")
        elif stripped.startswith("section "):
            entries.append(("section", stripped.removeprefix("section "), (), None, None))
        elif (task := _task(line)) is not None:
            name, tags, start, end = task
            entries.append(("milestone" if "milestone" in tags else "bar", name, tags, start, end))
    times = [t for *_, start, end in entries for t in (start, end) if t is not None]
    first = min(times, default=datetime(1970, 1, 1, tzinfo=UTC))
    last = max(times, default=first)
    span = max((last - first).total_seconds(), 60.0)

    def x_of(at: datetime) -> float:
        return _LABEL_WIDTH + (at - first).total_seconds() / span * _PLOT_WIDTH

    rows = []
    for n, (kind, label, tags, began, ended) in enumerate(entries):
        y = _TOP + n * _ROW
        if began is None or ended is None:
            rows.append(GanttRow(y, label, kind))
            continue
        x = x_of(began)
        rows.append(
            GanttRow(
                y,
                label,
                kind,
                x=round(x, 1),
                width=round(max(x_of(ended) - x, 2.0), 1),
                tags=tags,
                start=f"{began:%Y-%m-%d %H:%M:%S}",
                end=f"{ended:%Y-%m-%d %H:%M:%S}",
            )
        )
    shape = "%H:%M" if first.date() == last.date() else "%m-%d %H:%M"
    ticks = tuple(
        Tick(
            round(_LABEL_WIDTH + _PLOT_WIDTH * i / (_TICKS - 1), 1),
            f"{first + timedelta(seconds=span * i / (_TICKS - 1)):{shape}}",
        )
        for i in range(_TICKS)
    )
    height = _TOP + len(rows) * _ROW + 24
    return Gantt(title, tuple(rows), ticks, _LABEL_WIDTH + _PLOT_WIDTH + 40, height)


@attrs.frozen
class Bar:
    """One bar of a bar chart, with its value shown above it."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@attrs.frozen
class BarChart:
    """A bar chart of one figure over the periods.

    Attributes:
        title: What it shows, with its unit.
        bars: One bar a period (a period without a value has none).
        width: The drawing's width.
        height: The drawing's height.
        baseline: The y of the axis.
        empty: True when no period has a value.

    """

    title: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    baseline: int
    empty: bool


def bar_chart(
    title: str, points: Sequence[tuple[str, float | None]], *, unit: str = ""
) -> BarChart:
    """A bar chart of ``(period, value)`` points; a ``None`` value gets an empty bar."""
    height, baseline, top = 220, 190, 20
    slot = 56
    width = max(len(points), 1) * slot + 20
    peak = max((value for _, value in points if value is not None), default=0.0)
    bars = []
    for n, (label, value) in enumerate(points):
        tall = 0.0 if peak <= 0 or value is None else value / peak * (baseline - top)
        if value is None:
            shown = "–"
        elif value >= 10 or value == int(value):
            shown = f"{value:,.0f}{unit}"
        else:
            shown = f"{value:.1f}{unit}"
        bars.append(
            Bar(
                x=10 + n * slot + 8,
                y=round(baseline - tall, 1),
                width=slot - 16,
                height=round(max(tall, 1.0), 1),
                label=label,
                value=shown,
            )
        )
    empty = all(value is None for _, value in points)
    return BarChart(title, tuple(bars), width, height, baseline, empty)
