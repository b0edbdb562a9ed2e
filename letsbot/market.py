"""Offers and wants: posting, finding, and private messages between members."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from letsbot.config import Settings
from letsbot.context import Context
from letsbot.domain import Listing, ListingKind, Member
from letsbot.errors import Refusal
from letsbot.i18n import Raw, Translator
from letsbot.markup import escape
from letsbot.messages import Choice, Outgoing, ToAllGroups
from letsbot.registry import REGISTRY, Who
from letsbot.text import fold
from letsbot.when import WhenError, parse_day

TEXT_LIMIT = 500
PRICE_LIMIT = 100
MESSAGE_LIMIT = 1000
TAG_LIMIT = 30  # characters of one tag
MAX_TAGS = 5
PAGE = 10
CATEGORY_LIMIT = 50
EXPIRED_SHOWN = timedelta(days=30)  # /mine still shows listings expired this recently
NOTICE_TIME = time(10, 0)  # expiry notices arrive in the morning, not at midnight
HOUR = timedelta(hours=1)

_ID = re.compile(r"#?([0-9]{1,9})", re.ASCII)
_PAGE = re.compile(r"[0-9]{1,4}", re.ASCII)
_DATE_LIKE = re.compile(r"[0-9]{1,4}[/.-][0-9]{1,2}", re.ASCII)
_TAG = re.compile(r"[^\W_][\w-]*")
_PUNCTUATION = ".,;:!?\"'()"
PRICE_MARKERS = ("prijs:", "price:")
UNTIL_WORDS = {"tot", "until", "till", "t/m", "tem"}

KIND_NAME = {ListingKind.OFFER: "market.kind_offer", ListingKind.WANT: "market.kind_want"}
NOUN = {ListingKind.OFFER: "market.noun_offer", ListingKind.WANT: "market.noun_want"}
SAVED = {ListingKind.OFFER: "market.saved_offer", ListingKind.WANT: "market.saved_want"}
ANNOUNCE = {ListingKind.OFFER: "market.announce_offer", ListingKind.WANT: "market.announce_want"}
HEADER = {ListingKind.OFFER: "market.offers_header", ListingKind.WANT: "market.wants_header"}
NONE_FOUND = {ListingKind.OFFER: "market.offers_none", ListingKind.WANT: "market.wants_none"}
EMPTY = {ListingKind.OFFER: "market.offers_empty", ListingKind.WANT: "market.wants_empty"}
LIST_COMMAND = {ListingKind.OFFER: "offers", ListingKind.WANT: "wants"}


def read_tag(word: str) -> str | None:
    """The tag a word like ``#fiets,`` names (``fiets``); None if it is no tag (``#3``)."""
    if not word.startswith("#"):
        return None
    body = word[1:].rstrip(_PUNCTUATION)
    if not _TAG.fullmatch(body) or not any(ch.isalpha() for ch in body):
        return None
    return body


# reading a new listing


@dataclass(frozen=True)
class Draft:
    text: str
    price: str | None
    tags: list[tuple[str, str]]  # (folded, as typed in lower case)
    last_day: date | None


def read_listing(ctx: Context, words: list[str], usage_of: str) -> Draft:
    """``<text with #tags> [prijs: <price>] [tot <date>]``."""
    words, last_day = cut_until(ctx, words)
    words, price = cut_price(ctx, words, usage_of)
    text = ctx.text_argument(words, usage_of=usage_of, limit=TEXT_LIMIT)
    return Draft(text, price, read_tags(text), last_day)


def cut_until(ctx: Context, words: list[str]) -> tuple[list[str], date | None]:
    """Cut ``tot <date>`` off the end. Only the last 'tot' counts; 'van 10 tot 12 uur' is text."""
    folded = [fold(word) for word in words]
    marks = [i for i, word in enumerate(folded[:-1]) if word in UNTIL_WORDS]
    if not marks:
        return words, None
    at = marks[-1]
    start = at + 1
    if folded[start : start + 2] == ["en", "met"] and start + 2 < len(words):
        start += 2  # tot en met
    rest = words[start:]
    try:
        on = parse_day(rest, now=ctx.now, tz=ctx.settings.tz)
    except WhenError as error:
        text = " ".join(words[at:])[:60]
        if error.reason == "past":
            raise Refusal("market.until_past", text=text) from None
        if error.reason == "too_far":
            raise too_far(ctx) from None
        if error.reason == "weekday_mismatch" or _DATE_LIKE.match(rest[0]):
            raise Refusal("market.bad_until", text=text) from None
        return words, None  # not a date after all: ordinary words
    return words[:at], on


def cut_price(ctx: Context, words: list[str], usage_of: str) -> tuple[list[str], str | None]:
    """Cut ``prijs: <price>`` (``price:``) off; it runs to the end."""
    for i, word in enumerate(words):
        marker = next((m for m in PRICE_MARKERS if word.casefold().startswith(m)), None)
        if marker is None:
            continue
        price = " ".join([word[len(marker) :], *words[i + 1 :]]).strip()
        if not price:
            raise Refusal("market.price_missing", example=ctx.usage(usage_of))
        if len(price) > PRICE_LIMIT:
            raise Refusal("market.price_too_long", limit=PRICE_LIMIT)
        return words[:i], price
    return words, None


def read_tags(text: str) -> list[tuple[str, str]]:
    tags: dict[str, str] = {}
    for word in text.split():
        body = read_tag(word)
        if body is None:
            continue
        if len(body) > TAG_LIMIT:
            raise Refusal("market.tag_too_long", tag=body[:40], limit=TAG_LIMIT)
        tags.setdefault(fold(body)[:40], body.lower()[:40])  # NFKD may lengthen a word
    if len(tags) > MAX_TAGS:
        raise Refusal("market.too_many_tags", count=len(tags), limit=MAX_TAGS)
    return list(tags.items())


# expiry


def expiry(ctx: Context, last_day: date | None) -> datetime:
    """The end of the listing's last local day: by default ``market.listing_days`` from today."""
    market = ctx.settings.market
    today = ctx.now.astimezone(ctx.settings.tz).date()
    latest = today + timedelta(days=market.max_days)
    if last_day is None:
        last_day = today + timedelta(days=market.listing_days)
    elif last_day > latest:
        raise too_far(ctx)
    midnight = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=ctx.settings.tz)
    return midnight.astimezone(UTC)


def too_far(ctx: Context) -> Refusal:
    days = ctx.settings.market.max_days
    today = ctx.now.astimezone(ctx.settings.tz).date()
    latest = datetime.combine(today + timedelta(days=days), time(12), tzinfo=ctx.settings.tz)
    return Refusal("market.until_too_far", days=days, last=ctx.t.day(latest))


def notice_time(settings: Settings, expires_at: datetime, now: datetime) -> datetime | None:
    """When to tell the owner: in the morning, at least ``market.expiry_notice`` before expiry.

    None when that is already past (the owner just chose the date) or notices are off.
    """
    ahead = settings.market.expiry_notice
    if not ahead:
        return None
    day = (expires_at - ahead - timedelta(seconds=1)).astimezone(settings.tz).date()
    at = datetime.combine(day, NOTICE_TIME, tzinfo=settings.tz).astimezone(UTC)
    return at if now < at < expires_at else None


def last_day(t: Translator, listing: Listing) -> Raw:
    """The last day a listing is shown (it expires at the midnight after it)."""
    return t.day(listing.expires_at - timedelta(seconds=1))


# showing listings


def describe(t: Translator, listing: Listing, limit: int | None = None) -> Raw:
    """``Ik herstel fietsen #fiets (prijs: 60 pluimen per uur)``, shortened to ``limit``."""
    text = listing.text
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    if listing.price:
        return Raw(t("market.with_price", text=text, price=listing.price))
    return Raw(escape(text))


def line(ctx: Context, listing: Listing, owner: Member) -> str:
    t = ctx.t
    return t("market.line", id=listing.id, listing=describe(t, listing), who=ctx.label(owner))


def group_t(ctx: Context) -> Translator:
    return ctx.translators[ctx.settings.group.language]


def command_word(ctx: Context, name: str) -> str:
    """``/aanbiedingen`` or ``/offers``, as the sender speaks."""
    command = REGISTRY.find(name)
    assert command is not None
    return "/" + command.name_in(ctx.language)


# finding one listing and its owner's rights


def find_listing(ctx: Context, words: list[str], usage_of: str) -> tuple[Listing, list[str]]:
    match = _ID.fullmatch(words[0]) if words else None
    if match is None:
        raise Refusal("market.which", example=ctx.usage(usage_of))
    listing = ctx.store.market.listing(int(match.group(1)))
    if listing is None:
        raise Refusal("market.unknown", id=match.group(1))
    return listing, words[1:]


def require_owner(ctx: Context, listing: Listing) -> None:
    if listing.owner_id != ctx.member.id and not ctx.member.is_coordinator:
        raise Refusal("market.not_yours", id=listing.id)


def ensure_room(ctx: Context, owner: Member) -> None:
    """At most ``market.max_active`` listings online; the owner's row is locked first."""
    ctx.store.members.lock_members([owner.id])  # two /offer at once can't both take the last place
    maximum = ctx.settings.market.max_active
    if ctx.store.market.count_live_listings(owner.id, ctx.now) >= maximum:
        raise Refusal("market.too_many", max=maximum)


# posting


@REGISTRY.command("offer", nl="aanbod", who=Who.MEMBER, private=True, also=("aanbieden",))
def offer(ctx: Context, words: list[str]) -> None:
    post(ctx, words, ListingKind.OFFER)


@REGISTRY.command("want", nl="vraag", who=Who.MEMBER, private=True)
def want(ctx: Context, words: list[str]) -> None:
    asked = asks_payment(ctx, words)
    if asked is not None:  # "/vraag an 10 soep": asking An to pay, not a want for everyone
        request = REGISTRY.find("request")
        assert request is not None
        command = f"/{request.name_in(ctx.language)} {' '.join(words)}"
        raise Refusal(
            "market.want_or_request",
            who=asked,
            command=command,
            example=ctx.usage("want"),
            buttons=(Choice(command, command),),
        )
    post(ctx, words, ListingKind.WANT)


def asks_payment(ctx: Context, words: list[str]) -> str | None:
    """Who a want names first, followed by an amount (a member here, or one of a partner
    group by code): a payment request typed short."""
    if len(words) < 2 or words[0].startswith("#"):
        return None
    # Imported here: letsbot.partners builds on the ledger, which builds on this module.
    from letsbot.partners import partner_in

    across = partner_in(ctx, words[0])
    if across is not None:
        partner, code = across
        return f"{code} ({partner.name})" if words[1].lstrip("€$")[:1].isdigit() else None
    try:
        member, rest = ctx.find_member_in(words)
    except Refusal:
        return None
    amount = rest[0].lstrip("€$") if rest else ""
    return ctx.label(member) if amount[:1].isdigit() and not member.is_group_account else None


def post(ctx: Context, words: list[str], kind: ListingKind) -> None:
    draft = read_listing(ctx, words, kind.value)
    owner = ctx.member
    ensure_room(ctx, owner)
    expires_at = expiry(ctx, draft.last_day)
    listing = ctx.store.market.add_listing(
        kind=kind,
        owner_id=owner.id,
        text=draft.text,
        price=draft.price,
        search_text=fold(f"{draft.text} {draft.price or ''}"),
        tags=draft.tags,
        at=ctx.now,
        expires_at=expires_at,
        notice_at=notice_time(ctx.settings, expires_at, ctx.now),
    )
    lines = [ctx.t(SAVED[kind], id=listing.id, until=last_day(ctx.t, listing))]
    if ctx.settings.market.announce:
        lines.append(ctx.t("market.announced"))
        t = group_t(ctx)
        text = t(
            ANNOUNCE[kind], id=listing.id, who=ctx.label(owner, t), listing=describe(t, listing)
        )
        ctx.replies.append(Outgoing(ToAllGroups(), text))
    ctx.reply("\n".join(lines))


# finding


@REGISTRY.command(
    "offers", nl="aanbiedingen", who=Who.MEMBER, private=True, also=("zoek", "zoeken")
)
def offers(ctx: Context, words: list[str]) -> None:
    search(ctx, words, ListingKind.OFFER)


@REGISTRY.command("wants", nl="vragen", who=Who.MEMBER, private=True)
def wants(ctx: Context, words: list[str]) -> None:
    search(ctx, words, ListingKind.WANT)


def read_query(words: list[str]) -> tuple[list[str], list[str]]:
    """Folded words and tags: ``#Fiets`` is a tag, ``café,`` the word ``cafe``."""
    terms: list[str] = []
    tags: list[str] = []
    for word in words[:10]:
        tag = read_tag(word)
        if tag is not None:
            tags.append(fold(tag)[:40])
        elif term := fold(word.strip(_PUNCTUATION + "#"))[:50]:
            terms.append(term)
    return terms, tags


def search(ctx: Context, words: list[str], kind: ListingKind) -> None:
    page = 1
    if words and _PAGE.fullmatch(words[-1]):  # "/aanbiedingen fiets 2": page 2
        page = int(words[-1])
        words = words[:-1]
        if page < 1:
            raise Refusal("market.bad_page", example=ctx.usage(LIST_COMMAND[kind]))
    terms, tags = read_query(words)
    rows, total = ctx.store.market.search_listings(
        kind, words=terms, tags=tags, now=ctx.now, offset=(page - 1) * PAGE, limit=PAGE
    )
    query = " ".join(words)[:100]
    t = ctx.t
    if total == 0:
        if query:
            ctx.reply(t(NONE_FOUND[kind], query=query))
        else:
            ctx.reply(t(EMPTY[kind], example=ctx.usage(kind.value)))
        return
    pages = (total + PAGE - 1) // PAGE
    if page > pages:
        raise Refusal("market.no_such_page", page=page, pages=pages)
    shown_query = Raw(t("market.query", query=query)) if query else ""
    lines = [t(HEADER[kind], query=shown_query, total=total, page=page, pages=pages)]
    lines += [line(ctx, listing, owner) for listing, owner in rows]
    lines.append(t("market.contact_hint"))
    if page < pages:
        more = " ".join([command_word(ctx, LIST_COMMAND[kind]), *words, str(page + 1)])
        lines.append(t("market.more", command=more))
    ctx.reply("\n".join(lines))


@REGISTRY.command("categories", nl="categorieën", who=Who.MEMBER, private=True)
def categories(ctx: Context, words: list[str]) -> None:
    counts = ctx.store.market.tag_counts(ctx.now, CATEGORY_LIMIT)
    if not counts:
        ctx.reply(ctx.t("market.categories_none", example=ctx.usage("offer")))
        return
    lines = [ctx.t("market.categories_header")]
    for label, offered, wanted in counts:
        lines.append(ctx.t("market.category_line", tag=label, offers=offered, wants=wanted))
    lines.append(ctx.t("market.categories_footer", tag=counts[0][0]))
    ctx.reply("\n".join(lines))


@REGISTRY.command("mine", nl="mijn", who=Who.MEMBER, private=True)
def mine(ctx: Context, words: list[str]) -> None:
    own = ctx.store.market.listings_of(ctx.member.id, ctx.now - EXPIRED_SHOWN)
    t = ctx.t
    if not own:
        ctx.reply(t("market.mine_none", example=ctx.usage("offer")))
        return
    lines = [t("market.mine_header")]
    for listing in sorted(own, key=lambda item: not item.is_live(ctx.now)):
        key = "market.mine_line" if listing.is_live(ctx.now) else "market.mine_expired"
        lines.append(
            t(
                key,
                kind=Raw(t(KIND_NAME[listing.kind])),
                id=listing.id,
                listing=describe(t, listing),
                until=last_day(t, listing),
            )
        )
    lines.append(t("market.mine_footer"))
    ctx.reply("\n".join(lines))


# withdrawing and extending


@REGISTRY.command("withdraw", nl="intrekken", who=Who.MEMBER, private=True)
def withdraw(ctx: Context, words: list[str]) -> None:
    listing, rest = find_listing(ctx, words, "withdraw")
    require_owner(ctx, listing)
    if listing.withdrawn_at is not None or not ctx.store.market.withdraw_listing(
        listing.id, ctx.now
    ):
        raise Refusal("market.already_withdrawn", id=listing.id)
    ctx.reply(ctx.t("market.withdrawn", kind=Raw(ctx.t(KIND_NAME[listing.kind])), id=listing.id))
    reason = " ".join(rest).strip()[:200]
    if listing.owner_id != ctx.member.id:
        owner = ctx.store.members.member(listing.owner_id)
        assert owner is not None

        def told(t: Translator) -> str:
            text = t(
                "market.withdrawn_told",
                noun=Raw(t(NOUN[listing.kind])),
                id=listing.id,
                listing=describe(t, listing),
            )
            return text + ("\n" + t("market.reason", reason=reason) if reason else "")

        ctx.tell(owner, told)


@REGISTRY.command("extend", nl="verlengen", who=Who.MEMBER, private=True)
def extend(ctx: Context, words: list[str]) -> None:
    listing, rest = find_listing(ctx, words, "extend")
    require_owner(ctx, listing)
    if listing.withdrawn_at is not None:
        raise Refusal(
            "market.extend_withdrawn", id=listing.id, example=ctx.usage(listing.kind.value)
        )
    chosen = None
    if rest:
        if fold(rest[0]) not in UNTIL_WORDS:
            rest = ["tot", *rest]  # "/verlengen 3 1/3" means "tot 1/3"
        left, chosen = cut_until(ctx, rest)
        if left or chosen is None:
            raise Refusal("market.extend_usage", example=ctx.usage("extend"))
    owner = ctx.store.members.member(listing.owner_id)
    assert owner is not None
    if not listing.is_live(ctx.now):
        ensure_room(ctx, owner)  # back online: it counts again
    expires_at = expiry(ctx, chosen)
    listing = ctx.store.market.set_listing_expiry(
        listing.id, expires_at, notice_time(ctx.settings, expires_at, ctx.now)
    )
    kind = Raw(ctx.t(KIND_NAME[listing.kind]))
    ctx.reply(ctx.t("market.extended", kind=kind, id=listing.id, until=last_day(ctx.t, listing)))
    if owner.id != ctx.member.id:
        ctx.tell(
            owner,
            lambda t: t(
                "market.extended_told",
                noun=Raw(t(NOUN[listing.kind])),
                id=listing.id,
                until=last_day(t, listing),
            ),
        )


# private messages


@REGISTRY.command("msg", nl="bericht", who=Who.MEMBER, private=True)
def msg(ctx: Context, words: list[str]) -> None:
    receiver, rest = ctx.take_member(words, usage_of="msg")
    text = ctx.text_argument(rest, usage_of="msg", limit=MESSAGE_LIMIT)
    deliver(ctx, receiver, text, None)


@REGISTRY.command("contact", nl="reageer", who=Who.MEMBER, private=True)
def contact(ctx: Context, words: list[str]) -> None:
    listing, rest = find_listing(ctx, words, "contact")
    if not listing.is_live(ctx.now):
        raise Refusal("market.not_online", id=listing.id)
    if listing.owner_id == ctx.member.id:
        raise Refusal("market.own_listing", id=listing.id)
    owner = ctx.store.members.member(listing.owner_id)
    assert owner is not None
    text = ctx.text_argument(rest, usage_of="contact", limit=MESSAGE_LIMIT)
    deliver(ctx, owner, text, listing)


def deliver(ctx: Context, receiver: Member, text: str, listing: Listing | None) -> None:
    """A private message from the sender to ``receiver``, in their direct chat, once allowed."""
    sender = ctx.member
    if receiver.id == sender.id:
        raise Refusal("market.msg_self")
    if receiver.is_group_account:
        raise Refusal("market.msg_group_account")
    if not receiver.can_trade:
        raise Refusal("market.msg_inactive", who=ctx.label(receiver))
    if not pass_message(ctx, receiver, listing):
        # Blocked: answered as if sent (or unreachable), so the sender can't tell.
        if not ctx.store.members.identities(receiver.id):
            raise Refusal("market.msg_unreachable", who=ctx.label(receiver))
        ctx.reply(ctx.t("market.msg_sent", who=ctx.label(receiver)))
        return
    code = ctx.code(sender)

    def compose(t: Translator) -> str:
        who = ctx.label(sender, t)
        if listing is None:
            first = t("market.msg_from", who=who)
        else:
            first = t(
                "market.contact_from",
                who=who,
                noun=Raw(t(NOUN[listing.kind])),
                id=listing.id,
                listing=describe(t, listing),
            )
        return "\n".join([first, escape(text), t("market.msg_answer", code=code)])

    if not ctx.tell(receiver, compose):
        raise Refusal("market.msg_unreachable", who=ctx.label(receiver))
    ctx.reply(ctx.t("market.msg_sent", who=ctx.label(receiver)))


def pass_message(ctx: Context, receiver: Member, listing: Listing | None = None) -> bool:
    """Count a message with the sender's text for ``receiver``; False if they block the sender.

    Every command that puts a member's words in another member's chat (/msg,
    /contact, /request) goes through here. A blocked message counts toward
    ``market.msgs_per_hour`` too and its sender gets the usual answer: refusing
    or not counting it would tell them they are blocked.
    """
    sender = ctx.member
    # Both rows locked in one order: the sender's count holds against a second process.
    ctx.store.members.lock_members([sender.id, receiver.id])
    limit = ctx.settings.market.msgs_per_hour
    sent = ctx.store.contact.messages_since(sender.id, ctx.now - HOUR)
    if len(sent) >= limit:
        again = sent[len(sent) - limit] + HOUR
        raise Refusal("market.msg_limit", count=limit, time=ctx.t.moment(again))
    ctx.store.contact.add_message(
        sender_id=sender.id,
        receiver_id=receiver.id,
        listing_id=listing.id if listing else None,
        at=ctx.now,
    )
    return not ctx.store.contact.is_blocked(receiver.id, sender.id)


# blocking


@REGISTRY.command("block", nl="blokkeer", who=Who.MEMBER, private=True)
def block(ctx: Context, words: list[str]) -> None:
    if not words and ctx.incoming.reply_to is None:
        blocked = ctx.store.contact.blocked_by(ctx.member.id)
        if not blocked:
            ctx.reply(ctx.t("market.blocking_nobody", example=ctx.usage("block")))
            return
        names = Raw(", ".join(ctx.label(member) for member in blocked))
        example = Raw(ctx.t("cmd.unblock.example", code=ctx.code(blocked[0])))
        ctx.reply(ctx.t("market.blocking", names=names, example=example))
        return
    # Imported here: letsbot.partners builds on the ledger, which builds on this module.
    from letsbot.partners import partner_in

    across = partner_in(ctx, words[0]) if words else None
    if across is not None:  # no block reaches into another group's bot: a coordinator's pause
        raise Refusal("market.block_partner_member", code=across[1], group=across[0].name)
    other, _ = ctx.take_member(words, usage_of="block")
    if other.id == ctx.member.id:
        raise Refusal("market.block_self")
    if not ctx.store.contact.set_block(ctx.member.id, other.id, True, ctx.now):
        raise Refusal("market.already_blocked", who=ctx.label(other))
    ctx.reply(ctx.t("market.blocked", who=ctx.label(other), code=ctx.code(other)))


@REGISTRY.command("unblock", nl="deblokkeer", who=Who.MEMBER, private=True)
def unblock(ctx: Context, words: list[str]) -> None:
    other, _ = ctx.take_member(words, usage_of="unblock")
    if not ctx.store.contact.set_block(ctx.member.id, other.id, False, ctx.now):
        raise Refusal("market.not_blocked", who=ctx.label(other))
    ctx.reply(ctx.t("market.unblocked", who=ctx.label(other)))
