"""Server-drawn SVG plots for the status page: no script, no CDN, readable on a phone.

Each plot is one `<svg>` with a viewBox (it scales to the screen's width), a title, a
y axis with round ticks, x labels thinned to fit, and a legend. Every drawn datum is an
element with class `datum` and its value in `data-value`, so a test can see the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

W, H = 480, 250  # the viewBox; the page scales it (narrow, so text stays legible on a phone)
LEFT, RIGHT, TOP, BOTTOM = 52, 22, 60, 30
FONT = 15

# Colour-blind safe (Okabe-Ito), one per meaning, the same on every plot.
COLORS = {
    "pushed": "#009E73",
    "discarded": "#E69F00",
    "failed": "#D55E00",
    "interrupted": "#999999",
    "landed": "#0072B2",
    "rate": "#CC79A7",
    "spend": "#56B4E9",
    "budget": "#D55E00",
    "checks": "#0072B2",
}


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str


def nice_max(top: float) -> float:
    """A round upper bound for an axis at or above `top` that splits into 4 round ticks (1, 2, 4, 6, 8 x 10^n)."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    base = 10.0 ** math.floor(math.log10(top))
    for step in (1.0, 2.0, 4.0, 6.0, 8.0, 10.0):
        if step * base >= top:
            return step * base
    return 10.0 * base  # pragma: no cover


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "$":
        return f"${value:.2f}" if value < 10 else f"${value:.0f}"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:g}"


def _frame(title: str, labels: Sequence[str], top: float, unit: str, legend: Sequence[Series]) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [
        f'<svg class="plot" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="{FONT}">',
        f'<text x="{LEFT}" y="19" font-weight="600" font-size="17">{escape(title)}</text>',
    ]
    x = float(LEFT)
    for s in legend:  # the legend on its own line under the title
        out.append(f'<rect x="{x:.0f}" y="31" width="13" height="13" fill="{s.color}"/>')
        out.append(f'<text x="{x + 18:.0f}" y="43" fill="#333">{escape(s.name)}</text>')
        x += 30 + 8 * len(s.name)
    for i in range(5):
        value = top * i / 4
        y = TOP + ph - ph * i / 4
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">{_fmt(value, unit)}</text>')
    n = max(1, len(labels))
    every = max(1, math.ceil(n / 6))  # at most 6 labels: readable at phone width
    for i, label in enumerate(labels):
        if (n - 1 - i) % every:
            continue
        cx = LEFT + pw * (i + 0.5) / n
        out.append(f'<text x="{cx:.1f}" y="{H - BOTTOM + 18}" text-anchor="middle" fill="#444">{escape(label)}</text>')
    return out


def bars(
    title: str,
    labels: Sequence[str],
    stacks: Sequence[Series],
    *,
    unit: str = "",
    line: Series | None = None,
    limit: tuple[str, float] | None = None,
) -> str:
    """Stacked bars per label, optionally a line on the same axis and a dashed limit (a budget)."""
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(1, len(labels))
    totals = [sum(float(s.values[i] or 0) for s in stacks) for i in range(len(labels))]
    highest = max([*totals, *(float(v or 0) for v in (line.values if line else []))], default=0.0)
    top = nice_max(max(highest, limit[1] if limit else 0.0))
    legend = [*stacks, *([line] if line else [])]
    if limit:
        legend.append(Series(limit[0], [], COLORS["budget"]))
    out = _frame(title, labels, top, unit, legend)
    slot = pw / n
    for i in range(len(labels)):
        base = 0.0
        for s in stacks:
            value = float(s.values[i] or 0)
            if value <= 0:
                continue
            y0 = TOP + ph - ph * base / top
            y1 = TOP + ph - ph * (base + value) / top
            x = LEFT + slot * i + slot * 0.15
            out.append(
                f'<rect class="datum" data-series="{escape(s.name)}" data-value="{value:g}" x="{x:.1f}" '
                f'y="{y1:.1f}" width="{slot * 0.7:.1f}" height="{max(0.5, y0 - y1):.1f}" fill="{s.color}">'
                f"<title>{escape(labels[i])}: {escape(s.name)} {_fmt(value, unit)}</title></rect>"
            )
            base += value
    if line:
        out += _line(line, labels, top, unit)
    if limit:
        y = TOP + ph - ph * limit[1] / top
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS["budget"]}" '
                   f'stroke-width="2" stroke-dasharray="6 4"/>')  # fmt: skip
    if not any(totals) and not (line and any(line.values)):
        out.append(f'<text x="{W / 2}" y="{TOP + ph / 2}" text-anchor="middle" fill="#777">no data yet</text>')
    out.append("</svg>")
    return "\n".join(out)


def _line(s: Series, labels: Sequence[str], top: float, unit: str) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(1, len(labels))
    points, out = [], []
    for i, value in enumerate(s.values):
        if value is None:
            continue
        x, y = LEFT + pw * (i + 0.5) / n, TOP + ph - ph * float(value) / top
        points.append(f"{x:.1f},{y:.1f}")
        out.append(
            f'<circle class="datum" data-series="{escape(s.name)}" data-value="{float(value):g}" cx="{x:.1f}" '
            f'cy="{y:.1f}" r="4" fill="{s.color}"><title>{escape(labels[i])}: {_fmt(float(value), unit)}</title>'
            "</circle>"
        )
    if len(points) > 1:
        out.insert(0, f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.color}" stroke-width="2.5"/>')
    return out


def line(title: str, labels: Sequence[str], s: Series, *, unit: str = "", top: float | None = None) -> str:
    """One line (gaps where a value is None) on its own axis."""
    values = [float(v) for v in s.values if v is not None]
    ceiling = top if top is not None else nice_max(max(values, default=0.0))
    out = _frame(title, labels, ceiling, unit, [s])
    out += _line(s, labels, ceiling, unit)
    if not values:
        ph = H - TOP - BOTTOM
        out.append(f'<text x="{W / 2}" y="{TOP + ph / 2}" text-anchor="middle" fill="#777">no data yet</text>')
    out.append("</svg>")
    return "\n".join(out)
