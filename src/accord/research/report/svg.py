"""Charts as inline SVG, drawn by hand so the report needs no script, CDN or font download.

Why not a plotting library: matplotlib would add a heavy dependency for two chart types, and its
SVG embeds font glyphs and ids that bloat the file; these charts are a few rectangles and labels.
Suppressed values are drawn as no bar with the suppression mark, never as a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:12px"
_LEFT_COLOUR = "#4c78a8"
_RIGHT_COLOUR = "#e45756"
_BAR_COLOUR = "#54a24b"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    return float(((int(value) // step) + 1) * step)


def _text(x: float, y: float, text: str, anchor: str = "start", weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-weight="{weight}" '
            f'dominant-baseline="middle">{escape(text)}</text>')


def pyramid(bands: Sequence[str], left: Sequence[int | None], right: Sequence[int | None],
            left_label: str, right_label: str, title: str, mark: str = "s") -> Markup:
    """A population pyramid: youngest band at the bottom, ``left`` bars grow leftwards."""
    row_h, label_w, width, top = 22, 70, 640, 40
    half = (width - label_w) / 2 - 40
    known = [v for v in (*left, *right) if v is not None]
    scale = half / _nice_max(max(known, default=0))
    height = top + row_h * len(bands) + 30
    centre = 40 + half
    parts = [f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
             f'width="100%" style="max-width:{width}px;{_FONT}">',
             f"<title>{escape(title)}</title>",
             _text(centre - 6, 14, left_label, "end", "bold"),
             _text(centre + label_w + 6, 14, right_label, "start", "bold")]
    for i, band in enumerate(reversed(bands)):
        k = len(bands) - 1 - i
        y = top + i * row_h
        parts.append(_text(centre + label_w / 2, y + row_h / 2, band, "middle"))
        for value, side in ((left[k], -1), (right[k], 1)):
            colour = _LEFT_COLOUR if side < 0 else _RIGHT_COLOUR
            edge = centre if side < 0 else centre + label_w
            if value is None:
                parts.append(_text(edge + side * 6, y + row_h / 2, mark,
                                   "end" if side < 0 else "start"))
                continue
            w = value * scale
            x = edge - w if side < 0 else edge
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                         f'fill="{colour}"><title>{escape(f"{band}: {value:,}")}</title></rect>')
            tx = edge + side * (w + 4)
            parts.append(_text(tx, y + row_h / 2, f"{value:,}", "end" if side < 0 else "start"))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(labels: Sequence[str], values: Sequence[int | None], title: str,
              mark: str = "s", moe: float | None = None) -> Markup:
    """Horizontal bars, one per category, in the order given; ``moe`` draws each bar's margin
    of error (for noisy counts) as a whisker from value - moe (at least 0) to value + moe."""
    row_h, label_w, width, top = 22, 230, 640, 10
    span = width - label_w - 70
    known = [v + (moe or 0) for v in values if v is not None]
    scale = span / _nice_max(max(known, default=0))
    height = top + row_h * len(labels) + 10
    parts = [f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
             f'width="100%" style="max-width:{width}px;{_FONT}">',
             f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        short = label if len(label) <= 34 else label[:33] + "\u2026"
        parts.append(_text(label_w - 8, y + row_h / 2, short, "end"))
        if value is None:
            parts.append(_text(label_w + 4, y + row_h / 2, mark))
            continue
        w = value * scale
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                     f'fill="{_BAR_COLOUR}"><title>{escape(f"{label}: {value:,}")}</title></rect>')
        end = w
        if moe:
            lo, hi = label_w + max(value - moe, 0) * scale, label_w + (value + moe) * scale
            mid = y + row_h / 2
            parts.append(f'<path d="M{lo:.1f} {mid:.1f}H{hi:.1f}M{lo:.1f} {mid - 4:.1f}V{mid + 4:.1f}'
                         f'M{hi:.1f} {mid - 4:.1f}V{mid + 4:.1f}" stroke="#1d2329" '
                         'stroke-width="1.2" fill="none"/>')
            end = max(w, hi - label_w)
        parts.append(_text(label_w + end + 4, y + row_h / 2, f"{value:,}"))
    parts.append("</svg>")
    return Markup("".join(parts))
