"""User-controlled text (file names, labels, ids read from files) printed as text: never as rich markup,
never as terminal control. `safe(value)` is how any value goes into a markup message or a table cell;
`SafeConsole` shows any control character that still reaches it as an escape, and never fails on markup."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.text import Text

from pocketvec.errors import display_path

# C0 and C1 controls (ESC starts terminal sequences), DEL, and the bidi marks that reorder what is shown
_OTHER = "\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
CONTROL = re.compile(f"[\x00-\x1f{_OTHER}]")
CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHER}]")  # tabs and line breaks kept


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any) -> str:
    """`value` as one line of text that cannot drive the terminal: control characters (line breaks
    included) as \\x1b-style escapes, the bytes of a non-UTF-8 file name as \\xNN."""
    return CONTROL.sub(_escaped, display_path(str(value)))


def safe(value: Any) -> str:
    """`value` as literal text inside rich markup: printable, and its [brackets] never read as markup."""
    return escape(printable(value))


class SafeConsole(Console):
    """pocketvec's rich console: no :emoji: codes, control characters shown as escapes (tabs and line
    breaks kept), and a string that is not valid markup (a value that missed `safe`) printed as it is."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(emoji=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        text = CONTROL_BUT_LINES.sub(_escaped, text)
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})
