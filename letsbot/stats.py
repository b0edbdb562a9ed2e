"""How the group is doing: /stats, a text summary for everyone and charts for coordinators."""

from __future__ import annotations

from collections.abc import Sequence

from letsbot.context import Context
from letsbot.figures import MonthFigures, PartnerTrade, Spread, month_bounds, months_back
from letsbot.i18n import Raw, Translator
from letsbot.messages import Chat, Outgoing, ToChat, ToPerson
from letsbot.registry import REGISTRY, Who

MONTHS = 12  # this month so far and the eleven before it


def month_line(t: Translator, month: MonthFigures) -> str:
    name = t.month(month.start)
    if not month.transfers:
        return t("stats.month_none", month=name)
    key = "stats.month_one" if month.transfers == 1 else "stats.month"
    return t(key, month=name, amount=t.amount(month.volume), count=month.transfers)


def summary(
    t: Translator,
    group: str,
    months: Sequence[MonthFigures],
    traders: int,
    listings: tuple[int, int],
    spread: Spread,
    bookings: tuple[int, int] = (0, 0),
    partners: Sequence[PartnerTrade] = (),
) -> str:
    """The figures as text: always sent, for every member and every client.

    ``bookings``: (count, units) of the group's own bookings (mass payments) in the
    period, not trade: a line of their own, when there are any. ``partners``: the
    trade with each partner group, a line each.
    """
    lines = [
        t(
            "stats.header",
            group=group,
            first=t.month(months[0].start),
            last=t.month(months[-1].start),
        ),
        t("stats.volume_header"),
    ]
    lines += ["  " + month_line(t, month) for month in months]
    lines.append(
        t(
            "stats.total",
            amount=t.amount(sum(m.volume for m in months)),
            count=sum(m.transfers for m in months),
        )
    )
    if bookings[0]:
        lines.append(t("stats.group", count=bookings[0], amount=t.amount(bookings[1])))
    lines.append(t("stats.traders", count=traders, members=len(spread.balances)))
    lines.append(t("stats.new_members", count=sum(m.new_members for m in months)))
    lines.append(t("stats.listings", offers=listings[0], wants=listings[1]))
    lines.append(t("stats.spread", below=spread.below, zero=spread.at_zero, above=spread.above))
    if partners:
        lines.append(t("stats.partners"))
    lines += [
        "  "
        + t(
            "stats.partner",
            group=p.name,
            paid=t.amount(p.paid),
            received=t.amount(p.received),
            balance=t.amount(p.balance),
        )
        for p in partners
    ]
    return "\n".join(lines)


def chart_replies(
    t: Translator,
    chat: Chat,
    months: Sequence[MonthFigures],
    balances: Sequence[int],
    spread_to: ToChat | ToPerson | None = None,
) -> list[Outgoing]:
    """The two charts, each with its title as the caption and a description as its alt text.

    ``spread_to``: where the balances chart goes, if not to ``chat``.
    """
    from letsbot.charts import spread_chart, volume_chart

    volume = volume_chart(t, months)
    spread = spread_chart(t, balances)
    return [
        Outgoing(ToChat(chat), Raw(f"**{t('chart.volume.title')}**"), image=volume),
        Outgoing(spread_to or ToChat(chat), Raw(f"**{t('chart.spread.title')}**"), image=spread),
    ]


@REGISTRY.command("stats", nl="statistiek", who=Who.MEMBER, also=("statistieken",))
def stats(ctx: Context, words: list[str]) -> None:
    """Figures of the last twelve months.

    Where the answer goes: a coordinator's /stats is answered where it was
    asked, group or direct chat, with the text and both charts (so a
    coordinator can show the group how it is doing). A member's is answered
    with the text only, in their direct chat: the group stays quiet. The text
    always comes first and holds every figure, for members who can't see images.
    """
    coordinator = ctx.member.is_coordinator
    if not coordinator:
        ctx.private = True
    tz = ctx.settings.tz
    today = ctx.now.astimezone(tz).date()
    bounds = month_bounds(months_back(today, MONTHS), today, tz)
    figures = ctx.store.figures.month_figures(bounds)
    months, traders = figures.months, figures.traders
    balances = ctx.store.figures.balances()
    listings = ctx.store.figures.open_listings(ctx.now)
    group = ctx.store.figures.group_bookings(bounds[0])
    partners = ctx.store.figures.partner_trade(bounds[0], bounds[-1])
    t = ctx.t
    name = ctx.settings.group.name
    spread = Spread(tuple(balances))
    ctx.reply(summary(t, name, months, traders, listings, spread, group, partners))
    if coordinator:
        chat = ctx.incoming.chat
        # The spread of balances (its lowest and highest) is the group's to see only
        # under open bookkeeping; otherwise the coordinator gets it privately.
        private = chat.is_group and not ctx.settings.group.open_bookkeeping
        spread_to = ToPerson(ctx.incoming.sender) if private else None
        ctx.after_commit(lambda: chart_replies(t, chat, months, balances, spread_to))
