"""The small text markup of reply intents: ``**bold**``, nothing else.

Catalog texts may use ``**``; values put into them (names, descriptions)
are escaped, so a member can't make text bold or break a reply.
Adapters render with :func:`to_plain` or :func:`to_html`.
"""

from __future__ import annotations

import html
import re

_TOKEN = re.compile(r"\\(.)|\*\*", re.DOTALL)


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


def to_plain(text: str) -> str:
    return _TOKEN.sub(lambda m: m.group(1) or "", text)


def to_html(text: str) -> str:
    parts: list[str] = []
    bold = False
    pos = 0
    for match in _TOKEN.finditer(text):
        parts.append(html.escape(text[pos : match.start()], quote=False))
        if match.group(1) is not None:
            parts.append(html.escape(match.group(1), quote=False))
        else:
            parts.append("</b>" if bold else "<b>")
            bold = not bold
        pos = match.end()
    parts.append(html.escape(text[pos:], quote=False))
    if bold:
        parts.append("</b>")
    return "".join(parts)
