from hypothesis import given
from hypothesis import strategies as st

from letsbot.markup import escape, to_html, to_plain


def test_bold_renders() -> None:
    assert to_plain("**Ja** of nee") == "Ja of nee"
    assert to_html("**Ja** of <nee>") == "<b>Ja</b> of &lt;nee&gt;"


def test_unclosed_bold_is_closed_in_html() -> None:
    assert to_html("**open") == "<b>open</b>"


@given(st.text())
def test_escaped_text_comes_back_unchanged(text: str) -> None:
    assert to_plain(escape(text)) == text
    assert "<b>" not in to_html(escape(text))
