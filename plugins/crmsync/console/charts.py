"""The Runs page's chart, as geometry for an inline SVG (pure: no JavaScript, no library)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

SERIES = (("pulled", "fetched", "#2b6cb0"), ("pushed", "pushed", "#2f855a"), ("failed", "failed", "#c53030"))
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 48, 28, 12


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    line: str = ""  # SVG polyline points of the retry queue's size
    y_max: int = 0
    queue_max: int = 0
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x, day)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (name, color)


def _scale(value: int, top: int) -> float:
    return (HEIGHT - BOTTOM - TOP) * value / top if top else 0.0


def runs_chart(runs: Sequence[Mapping[str, Any]], queue: Sequence[Mapping[str, Any]]) -> Chart:
    """Pulled, pushed and failed per day (summed over that day's runs), oldest first, and the
    retry queue's size after each run as a line (its own scale, on the right)."""
    days: dict[date, dict[str, int]] = {}
    for run in runs:
        day = run["started_at"].date()
        totals = days.setdefault(day, {column: 0 for _, column, _ in SERIES})
        for _, column, _ in SERIES:
            totals[column] += int(run.get(column) or 0)
    chart = Chart(legend=[(name, color) for name, _, color in SERIES] + [("retry queue", "#b7791f")])
    ordered = sorted(days.items())
    chart.y_max = max([max(t.values()) for _, t in ordered] + [1])
    plot = WIDTH - LEFT - 8
    slot = plot / max(len(ordered), 1)
    bar_width = max(min(slot / (len(SERIES) + 1), 24.0), 1.0)
    for index, (day, totals) in enumerate(ordered):
        x0 = LEFT + index * slot + (slot - bar_width * len(SERIES)) / 2
        for position, (name, column, color) in enumerate(SERIES):
            height = _scale(totals[column], chart.y_max)
            chart.bars.append(Bar(round(x0 + position * bar_width, 1), round(HEIGHT - BOTTOM - height, 1),
                                  round(bar_width - 1, 1), round(height, 1), color,
                                  f"{day.isoformat()}: {totals[column]:,} {name}"))
        if len(ordered) <= 14 or index % max(len(ordered) // 14, 1) == 0:
            chart.labels.append((round(LEFT + index * slot + slot / 2, 1), day.strftime("%d %b")))
    if queue and ordered:
        first, last = ordered[0][0], ordered[-1][0]
        span = max((last - first).days + 1, 1)
        chart.queue_max = max([int(p["queued"]) for p in queue] + [1])
        points = []
        for point in queue:
            moment = point["finished_at"]
            offset = (moment.date() - first).days + (moment.hour * 3600 + moment.minute * 60) / 86400
            x = LEFT + plot * min(max(offset / span, 0.0), 1.0)
            points.append(f"{x:.1f},{HEIGHT - BOTTOM - _scale(int(point['queued']), chart.queue_max):.1f}")
        chart.line = " ".join(points)
    return chart
