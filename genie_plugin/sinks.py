"""Text from files and users, made safe for each place it is written to.

Names (strategies, scenarios, classes, paths) and error messages come from files a user did
not write (a label file, a results row, a plugin): each sink has its own dangerous characters,
so each gets its own escape, applied where the text is written, never at the source.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal(text: object) -> str:
    """Control characters (ESC sequences that move the cursor, recolour or retitle a terminal,
    a bell, a carriage return that hides a line) as visible ``\\xNN`` escapes; tab and newline
    kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def one_line(text: object) -> str:
    """:func:`terminal` on a single line: newlines and tabs as spaces."""
    return " ".join(terminal(text).split())


_TAG_AHEAD = re.compile(r"[a-z#/@][^[]*?\]")


def markup(text: object) -> str:
    """For rich's console markup, so that rich prints ``text`` exactly: ``[/]`` in a path is
    text, not a tag. rich reads ``\\[`` before a tag-like bracket as an escape (so n literal
    backslashes there need 2n + 1) and drops one backslash before any other bracket (n need
    n + 1); a trailing run is doubled, as the caller's closing tag follows it. rich's own
    ``escape`` covers only the first case (the hypothesis fuzz found ``\\[`` printed as ``[``)."""
    s = terminal(text)

    def one(m: re.Match) -> str:
        n = len(m.group(1))
        tag_like = _TAG_AHEAD.match(s, m.end()) is not None
        return "\\" * (2 * n + 1 if tag_like else n + 1) + "["

    s2 = re.sub(r"(\\*)\[", one, s)
    return re.sub(r"(\\+)$", lambda m: m.group(1) * 2, s2)


def markdown_cell(text: object) -> str:
    """For a Markdown table cell: one line, ``|`` escaped (it would shift the columns), HTML
    special characters as entities (GitHub renders inline HTML), backticks kept literal."""
    s = one_line(text)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        s = s.replace(a, b)
    return s


def markdown_text(text: object) -> str:
    """For Markdown outside a table (a heading): one line, HTML special characters as
    entities."""
    s = one_line(text)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        s = s.replace(a, b)
    return s


#: What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """For a CSV cell: text a spreadsheet would run as a formula gets a leading ``'`` (numbers,
    negative ones too, are left alone); control characters escaped."""
    if not isinstance(value, str):
        return value
    s = terminal(value)
    if s.startswith(_FORMULA_START) and not _is_number(s):
        return "'" + s
    return s


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def plot_text(text: object) -> str:
    """For matplotlib text: ``$`` escaped (two of them start mathtext, which fails to parse
    ``budget_$5_vs_$10`` and would stop the plot), control characters escaped."""
    return one_line(text).replace("$", r"\$")


def quoted(value: object, limit: int = 60) -> str:
    """``repr(value)`` for an error message, at most ``limit`` characters (a 240-character
    name or a 10,000-item list would bury the message)."""
    s = repr(value)
    return s if len(s) <= limit else f"{s[: limit - 20]}... ({len(str(value))} characters)"
