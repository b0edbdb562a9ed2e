"""``letsbot report``: one self-contained HTML page for the general meeting.

The figures of /stats per month for a period, both charts embedded as data
URIs, and the events held. No external resource: the file can be mailed,
printed or opened without a network. Every text from the database (event
titles, places) is HTML-escaped; the texts around them come from the catalogs.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from letsbot.config import Settings
from letsbot.domain import Event
from letsbot.figures import MonthFigures, PartnerTrade, Spread, clip, month_bounds
from letsbot.i18n import Translator
from letsbot.markup import escape, to_html, to_plain
from letsbot.messages import Image
from letsbot.ports import UnitOfWork

EVENT_LIMIT = 10000  # a group holds a few events a month

STYLE = """
body { font-family: Verdana, Arial, sans-serif; font-size: 18px; line-height: 1.5;
       color: #212121; max-width: 1040px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 32px; margin-bottom: 0; }
h2 { font-size: 24px; margin-top: 1.6em; border-bottom: 2px solid #2e7d32; }
.period { font-size: 20px; margin-top: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ccc; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tfoot th, tfoot td { font-weight: bold; border-top: 2px solid #212121; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 16px; color: #555; }
.made { margin-top: 3em; font-size: 14px; color: #757575; }
@media print { body { margin: 0; } figure { page-break-inside: avoid; } }
"""


@dataclass(frozen=True)
class Figures:
    """What the report shows, read in one transaction."""

    months: list[MonthFigures]
    traders: int
    listings: tuple[int, int]
    balances: list[int]
    events: list[Event]
    going: dict[int, int]
    partners: list[PartnerTrade] = field(default_factory=list)  # trade with each partner group


def period(first: date, last: date, settings: Settings) -> tuple[datetime, datetime]:
    """[local midnight of ``first``, local midnight after ``last``): the days, both included."""
    tz = settings.tz
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    after = last + timedelta(days=1)
    return start, datetime(after.year, after.month, after.day, tzinfo=tz)


def read_figures(
    uow: UnitOfWork, settings: Settings, first: date, last: date, now: datetime
) -> Figures:
    start, end = period(first, last, settings)
    bounds = clip(month_bounds(first, last, settings.tz), start, end)
    held_until = min(end, now)  # "held": events that took place, not those still to come
    with uow.transaction() as store:
        figures = store.figures.month_figures(bounds)
        at = min(end, now)
        listings = store.figures.open_listings(at)
        balances = store.figures.balances(at)
        events = (
            store.events.events_between(start, held_until, EVENT_LIMIT)
            if start < held_until
            else []
        )
        going = store.events.going_counts([e.id for e in events])
        partners = store.figures.partner_trade(start, at)
    return Figures(figures.months, figures.traders, listings, balances, events, going, partners)


def _h(markup: str) -> str:
    """Catalog markup (``**bold**``, escaped values) as HTML."""
    return to_html(markup)


def _attr(markup: str) -> str:
    return html.escape(to_plain(markup), quote=True)


def _image(image: Image, caption: str) -> str:
    data = base64.b64encode(image.data).decode("ascii")
    alt = html.escape(image.alt, quote=True)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"'
        f' width="{image.width}" height="{image.height}">'
        f"<figcaption>{_h(caption)}</figcaption></figure>"
    )


def _row(cells: Sequence[str], numeric: Sequence[bool], tag: str = "td") -> str:
    parts = [
        f'<{tag} class="n">{cell}</{tag}>' if is_number else f"<{tag}>{cell}</{tag}>"
        for cell, is_number in zip(cells, numeric, strict=True)
    ]
    return "<tr>" + "".join(parts) + "</tr>"


def _months_table(t: Translator, months: Sequence[MonthFigures], traders: int) -> str:
    numeric = (False, True, True, True, True, True)
    head = [
        t("report.month"),
        t("report.transfers"),
        t("report.volume", unit=t.currency.plural),
        t("report.traders"),
        t("report.new_members"),
        t("report.new_listings"),
    ]
    rows = [
        _row(
            [
                _h(t.month(m.start)),
                str(m.transfers),
                _h(t.number(m.volume)),
                str(m.traders),
                str(m.new_members),
                str(m.new_listings),
            ],
            numeric,
        )
        for m in months
    ]
    total = _row(
        [
            _h(t("report.total")),
            str(sum(m.transfers for m in months)),
            _h(t.number(sum(m.volume for m in months))),
            str(traders),  # members who traded at all, not a sum over months
            str(sum(m.new_members for m in months)),
            str(sum(m.new_listings for m in months)),
        ],
        numeric,
        "th",
    )
    return (
        "<table><thead>"
        + _row([_h(h) for h in head], numeric, "th")
        + "</thead><tbody>"
        + "".join(rows)
        + "</tbody><tfoot>"
        + total
        + "</tfoot></table>"
    )


def _summary_table(t: Translator, figures: Figures, day: datetime) -> str:
    months = figures.months
    spread = Spread(tuple(figures.balances))
    on = t.day(day)
    items = [
        (t("report.transfers"), str(sum(m.transfers for m in months))),
        (t("report.volume", unit=t.currency.plural), t.number(sum(m.volume for m in months))),
        (t("report.traders"), str(figures.traders)),
        (t("report.new_members"), str(sum(m.new_members for m in months))),
        (t("report.new_listings"), str(sum(m.new_listings for m in months))),
        (
            t("report.open_listings", day=on),
            t("report.open_listings_value", offers=figures.listings[0], wants=figures.listings[1]),
        ),
        (
            t("report.members", day=on),
            t(
                "report.members_value",
                count=len(spread.balances),
                below=spread.below,
                zero=spread.at_zero,
                above=spread.above,
            ),
        ),
    ]
    rows = "".join(f"<tr><th>{_h(label)}</th><td>{_h(value)}</td></tr>" for label, value in items)
    return f"<table>{rows}</table>"


def _partners_table(t: Translator, partners: Sequence[PartnerTrade], day: datetime) -> str:
    numeric = (False, True, True, True, True, True)
    unit = t.currency.plural
    head = [
        t("report.partner_group"),
        t("report.partner_paid_count"),
        t("report.partner_paid", unit=unit),
        t("report.partner_received_count"),
        t("report.partner_received", unit=unit),
        t("report.partner_balance", day=t.day(day), unit=unit),
    ]
    rows = [
        _row(
            [
                _h(escape(f"{p.name} ({p.prefix})")),
                str(p.paid_count),
                _h(t.number(p.paid)),
                str(p.received_count),
                _h(t.number(p.received)),
                _h(t.number(p.balance)),
            ],
            numeric,
        )
        for p in partners
    ]
    return (
        "<table><thead>"
        + _row([_h(h) for h in head], numeric, "th")
        + "</thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _events_table(t: Translator, events: Sequence[Event], going: dict[int, int]) -> str:
    if not events:
        return f"<p>{_h(t('report.no_events'))}</p>"
    numeric = (False, False, False, False, True)
    head = [
        t("report.event_when"),
        t("report.event_kind"),
        t("report.event_title"),
        t("report.event_place"),
        t("report.event_going"),
    ]
    rows = [
        _row(
            [
                _h(t.event_time(e.starts_at, e.ends_at)),
                _h(t(f"event.kind.{e.kind.value}")),
                _h(escape(e.title)),
                _h(escape(e.place or "")),
                str(going.get(e.id, 0)),
            ],
            numeric,
        )
        for e in events
    ]
    return (
        "<table><thead>"
        + _row([_h(h) for h in head], numeric, "th")
        + "</thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def render_report(
    t: Translator, group: str, first: date, last: date, figures: Figures, now: datetime
) -> str:
    from letsbot.charts import spread_chart, volume_chart

    title = t("report.title", group=group)
    last_moment = min(now, datetime(last.year, last.month, last.day, 12, tzinfo=t.timezone))
    volume = volume_chart(t, figures.months)
    spread = spread_chart(t, figures.balances)
    body = [
        f"<h1>{_h(title)}</h1>",
        f'<p class="period">{_h(t("report.period", first=t.date(first), last=t.date(last)))}</p>',
        f"<h2>{_h(t('report.summary'))}</h2>",
        _summary_table(t, figures, last_moment),
        f"<h2>{_h(t('report.months'))}</h2>",
        _months_table(t, figures.months, figures.traders),
        f"<h2>{_h(t('report.charts'))}</h2>",
        _image(volume, t("chart.volume.title")),
        _image(spread, t("report.balances_on", day=t.day(last_moment))),
        *(
            [
                f"<h2>{_h(t('report.partners'))}</h2>",
                _partners_table(t, figures.partners, last_moment),
            ]
            if figures.partners
            else []
        ),
        f"<h2>{_h(t('report.events'))}</h2>",
        _events_table(t, figures.events, figures.going),
        f'<p class="made">{_h(t("report.made", day=t.day(now)))}</p>',
    ]
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{t.language}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_attr(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def build_report(
    uow: UnitOfWork, settings: Settings, t: Translator, first: date, last: date, now: datetime
) -> str:
    """The whole page for the days ``first`` to ``last`` (both included)."""
    figures = read_figures(uow, settings, first, last, now)
    return render_report(t, settings.group.name, first, last, figures, now)
