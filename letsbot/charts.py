"""The charts of /stats and ``letsbot report``: PNG pictures drawn with matplotlib (Agg).

matplotlib is imported inside the drawing functions: it takes a second or more
to load, and only a coordinator's /stats or a report needs it. The figures are
drawn on their own canvas, never through pyplot, so no global state is shared
between threads. Output is deterministic: the same figures give the same bytes
(no time stamp or version in the PNG metadata, matplotlib's own DejaVu font).

Readable for everyone: large type, month names in the reader's language, the
group's own unit on the axis, the value written on each bar.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from letsbot.figures import Bin, MonthFigures, bins
from letsbot.i18n import Translator
from letsbot.markup import to_plain
from letsbot.messages import Image

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 10.0, 5.6, 100  # 1000 x 560 pixels
TITLE_SIZE, LABEL_SIZE, TICK_SIZE, VALUE_SIZE = 22, 16, 14, 14
GREEN, RED, GREY, INK = "#2e7d32", "#c62828", "#757575", "#212121"
MAX_VALUE_LABELS = 18  # more bars than this: their values would overlap


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(axis="both", labelsize=TICK_SIZE, colors=INK)
    return figure, axes


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _amount_axis(axes: Axes, t: Translator, scale: int) -> None:
    """Amounts on the y axis as members write them: ``1.500`` in Dutch, ``1,500`` in English."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10], integer=scale == 1))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: t.number(round(value * scale))))


def _label_bars(axes: Axes, bars: Any, values: Sequence[str]) -> None:
    for bar, value in zip(bars, values, strict=True):
        if value:
            axes.annotate(
                value,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=VALUE_SIZE,
                color=INK,
            )


def _image(data: bytes, stem: str, alt: str) -> Image:
    return Image(data, stem + ".png", alt, round(WIDTH * DPI), round(HEIGHT * DPI))


def month_labels(t: Translator, months: Sequence[MonthFigures]) -> list[str]:
    """``jan`` under each bar, with the year under the first bar and under each January."""
    every = max(1, math.ceil(len(months) / 12))  # a longer period: a label every few months
    labels: list[str] = []
    for index, month in enumerate(months):
        local = month.start.astimezone(t.timezone)
        if index % every:
            labels.append("")
        elif index == 0 or local.month == 1:
            labels.append(f"{t.month_short(month.start)}\n{local.year}")
        else:
            labels.append(t.month_short(month.start))
    return labels


def volume_alt(t: Translator, months: Sequence[MonthFigures]) -> str:
    first, last = t.month(months[0].start), t.month(months[-1].start)
    total = sum(m.volume for m in months)
    if not total:
        return to_plain(t("chart.volume.alt_empty", first=first, last=last))
    best = max(months, key=lambda m: m.volume)  # the first of equals
    return to_plain(
        t(
            "chart.volume.alt",
            first=first,
            last=last,
            best=t.month(best.start),
            most=t.amount(best.volume),
            total=t.amount(total),
        )
    )


def volume_chart(t: Translator, months: Sequence[MonthFigures]) -> Image:
    """Bars: the trade volume of each month, in the group's unit."""
    scale = t.currency.scale
    figure, axes = _figure()
    values = [m.volume / scale for m in months]
    bars = axes.bar(range(len(months)), values, width=0.7, color=GREEN)
    axes.set_title(t("chart.volume.title"), fontsize=TITLE_SIZE, loc="left", color=INK)
    axes.set_ylabel(t.currency.plural, fontsize=LABEL_SIZE, color=INK)
    axes.set_xticks(range(len(months)), month_labels(t, months))
    _amount_axis(axes, t, scale)
    axes.set_ylim(0, max(values, default=0) * 1.15 or 1)
    if len(months) <= MAX_VALUE_LABELS:
        _label_bars(axes, bars, [t.number(m.volume) if m.volume else "" for m in months])
    return _image(_png(figure), "volume", volume_alt(t, months))


def bin_label(t: Translator, found: Bin) -> str:
    if found.low == found.high:
        return t.number(found.low)
    return to_plain(t("chart.spread.range", low=t.number(found.low), high=t.number(found.high)))


def spread_alt(t: Translator, balances: Sequence[int]) -> str:
    if not balances:
        return to_plain(t("chart.spread.alt_empty"))
    return to_plain(
        t(
            "chart.spread.alt",
            below=sum(1 for b in balances if b < 0),
            zero=sum(1 for b in balances if b == 0),
            above=sum(1 for b in balances if b > 0),
            lowest=t.amount(min(balances)),
            highest=t.amount(max(balances)),
        )
    )


def spread_chart(t: Translator, balances: Sequence[int]) -> Image:
    """Bars: how many members stand how far below or above zero (red below, green above)."""
    found = bins(balances, t.currency.scale)
    figure, axes = _figure()
    colours = [RED if b.high < 0 else GREEN if b.low > 0 else GREY for b in found]
    counts = [b.count for b in found]
    bars = axes.bar(range(len(found)), counts, width=0.8, color=colours)
    axes.set_title(t("chart.spread.title"), fontsize=TITLE_SIZE, loc="left", color=INK)
    axes.set_ylabel(t("chart.spread.members"), fontsize=LABEL_SIZE, color=INK)
    axes.set_xlabel(t("chart.spread.axis", unit=t.currency.plural), fontsize=LABEL_SIZE, color=INK)
    size = TICK_SIZE if len(found) <= 7 else TICK_SIZE - 3
    axes.set_xticks(range(len(found)), [bin_label(t, b) for b in found], fontsize=size)
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10], integer=True))
    axes.set_ylim(0, max(counts, default=0) * 1.15 or 1)
    _label_bars(axes, bars, [str(c) if c else "" for c in counts])
    return _image(_png(figure), "balances", spread_alt(t, balances))
