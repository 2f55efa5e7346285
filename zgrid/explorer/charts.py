"""Charts drawn on the server as inline SVG (no script, nothing fetched), and the number
formats the pages and the charts' axes share."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

__all__ = [
    "Bar",
    "Series",
    "bar_chart",
    "human_bytes",
    "human_count",
    "human_duration",
    "human_period",
    "human_time",
    "line_chart",
]

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_MAX_POINTS = 360  # a chart wider than this many points shows every n-th one


def human_bytes(value: float) -> str:
    """34359738368 -> '32 GiB'; one decimal at most, binary units."""
    sign = "-" if value < 0 else ""
    size, unit = float(abs(value)), 0
    while size >= 1024 and unit < len(_BYTE_UNITS) - 1:
        size /= 1024
        unit += 1
    if unit == 0:
        return f"{sign}{int(size)} B"
    text = f"{size:.1f}".removesuffix(".0")
    return f"{sign}{text} {_BYTE_UNITS[unit]}"


def human_count(value: float) -> str:
    """1234567 -> '1,234,567'; a fraction keeps one decimal."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def human_duration(seconds: int) -> str:
    """200000 -> '2 d 7 h'; the two largest units."""
    if seconds <= 0:
        return "0 s"
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def human_time(timestamp: int) -> str:
    """Ledger time (Unix seconds) as UTC; 0 is 'never'."""
    if timestamp <= 0:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def human_period(start: int, end: int) -> str:
    """Two ledger times as one span; the end without its date when it is the same day."""
    first, last = human_time(start), human_time(end)
    if first[:10] == last[:10] and start > 0:
        return f"{first.removesuffix(' UTC')} – {last[11:]}"
    return f"{first} – {last}"


@dataclass(frozen=True)
class Series:
    """One line of a line chart; ``area`` fills below it."""

    label: str
    values: Sequence[float]
    css: str
    area: bool = False


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    href: str = ""


def _nice_ceiling(value: float, base: int) -> float:
    """The smallest 1, 2, 4, 8 (x 10^k) step of the axis unit at or above ``value``."""
    if value <= 0:
        return 1.0
    unit = 1.0
    if base == 1024:
        unit = 1024.0 ** int(math.log(value, 1024)) if value >= 1024 else 1.0
    scaled = value / unit
    power = 10.0 ** math.floor(math.log10(scaled))
    for step in (1, 2, 4, 8, 10):
        if step * power >= scaled * (1 - 1e-9):
            return step * power * unit
    return 10 * power * unit


def _f(value: float) -> str:
    return f"{value:.1f}"


def _time_label(timestamp: int, span: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%m-%d" if span > 3 * 86400 else "%d %H:%M")


def _thinned(times: Sequence[int], series: Sequence[Series]) -> tuple[list[int], list[list[float]]]:
    step = max(1, math.ceil(len(times) / _MAX_POINTS))
    keep = list(range(0, len(times), step))
    if keep[-1] != len(times) - 1:
        keep.append(len(times) - 1)  # the newest point is always drawn
    return [times[i] for i in keep], [[float(s.values[i]) for i in keep] for s in series]


def line_chart(
    times: Sequence[int],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Callable[[float], str] = human_count,
    base: int = 10,
    chart_id: str = "",
    width: int = 720,
    height: int = 240,
) -> Markup:
    """Lines (or areas) of ``series`` over ``times`` (Unix seconds), the y axis from 0 and
    labelled with ``fmt`` at round steps of ``base`` (1024 for bytes)."""
    left, right, top, bottom = 72, 16, 30, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [
        f'<svg class="chart line-chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" data-points="{len(times)}">',
        f"<title>{escape(title)}</title>",
    ]
    if not times:
        out.append(
            f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "no history yet</text></svg>"
        )
        return Markup("".join(out))
    shown, columns = _thinned(times, series)
    if len(shown) == 1:  # one hour of history: a flat line across the chart
        shown = [shown[0], shown[0] + 1]
        columns = [values * 2 for values in columns]
    start, end = shown[0], shown[-1]
    top_value = _nice_ceiling(max(max(values) for values in columns), base)

    def x(timestamp: int) -> float:
        return left + (timestamp - start) / (end - start) * plot_w

    def y(value: float) -> float:
        return top + plot_h - value / top_value * plot_h

    for i in range(5):
        value = top_value * i / 4
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" '
            f'y1="{_f(y(value))}" y2="{_f(y(value))}"/>'
            f'<text class="tick" x="{left - 6}" y="{_f(y(value) + 4)}" '
            f'text-anchor="end">{escape(fmt(value))}</text>'
        )
    span = end - start
    for i in range(5):
        moment = start + span * i // 4
        anchor = "start" if i == 0 else ("end" if i == 4 else "middle")
        out.append(
            f'<text class="tick" x="{_f(x(moment))}" y="{height - 8}" '
            f'text-anchor="{anchor}">{escape(_time_label(moment, span))}</text>'
        )
    for line, values in zip(series, columns, strict=True):
        points = " L ".join(f"{_f(x(t))},{_f(y(v))}" for t, v in zip(shown, values, strict=True))
        if line.area:
            baseline = _f(y(0))
            out.append(
                f'<path class="area {escape(line.css)}" d="M {_f(x(start))},{baseline} '
                f'L {points} L {_f(x(end))},{baseline} Z"/>'
            )
        out.append(
            f'<path class="line {escape(line.css)}" d="M {points}" fill="none" '
            f'data-label="{escape(line.label)}" data-last="{values[-1]:g}"/>'
        )
    legend_x = left
    for line in series:
        out.append(
            f'<rect class="key {escape(line.css)}" x="{legend_x}" y="8" width="12" height="12"/>'
            f'<text class="legend" x="{legend_x + 16}" y="18">{escape(line.label)}</text>'
        )
        legend_x += 24 + 8 * len(line.label)
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(bars: Sequence[Bar], *, title: str, chart_id: str = "", width: int = 720) -> Markup:
    """Horizontal bars, one row per item, each linked to ``href`` when it has one."""
    left, right, row, top = 150, 60, 26, 8
    height = top * 2 + row * max(len(bars), 1)
    out = [
        f'<svg class="chart bar-chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" data-bars="{len(bars)}">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        out.append(
            f'<text class="empty" x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle">'
            "nothing to show</text></svg>"
        )
        return Markup("".join(out))
    largest = max(1, *(bar.value for bar in bars))
    plot_w = width - left - right
    for i, bar in enumerate(bars):
        y = top + i * row
        length = max(bar.value / largest * plot_w, 2.0 if bar.value else 0.0)
        shape = (
            f'<text class="label" x="{left - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(bar.label)}</text>"
            f'<rect class="bar" x="{left}" y="{y + 4}" width="{_f(length)}" height="{row - 8}" '
            f'data-label="{escape(bar.label)}" data-value="{bar.value}"/>'
            f'<text class="value" x="{_f(left + length + 6)}" y="{y + 17}">'
            f"{escape(human_count(bar.value))}</text>"
        )
        if bar.href:
            shape = f'<a href="{escape(bar.href)}">{shape}</a>'
        out.append(shape)
    out.append("</svg>")
    return Markup("".join(out))
