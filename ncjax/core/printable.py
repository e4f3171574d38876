"""Text from files, made safe to show a person: escaped, one line, cut to a length.

A name inside a model file (a layer, a node, an op type, a version string) or a file's own name is chosen by
whoever made the file. Printed raw, a newline in it forges a second line of output ("verdict: clean"), ANSI
escapes clear the screen or recolour it, and bidirectional-override characters reorder what is shown. Every
such string is shown through `printable` or `quoted`, and every message a command prints goes through
`one_line` as well, so no character a file chose is ever obeyed by a terminal.
"""
from __future__ import annotations

NAME_LIMIT = 80  # characters of one name shown; the rest is counted, not shown
MESSAGE_LIMIT = 2000  # characters of one printed message


def _escape(char: str) -> str:
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _visible(text: str, limit: int, *, backslashes: bool) -> str:
    head = text[:limit]
    if head.isprintable() and not (backslashes and "\\" in head):
        shown = head
    else:
        shown = "".join(c if c.isprintable() and not (backslashes and c == "\\") else
                        "\\\\" if c == "\\" else _escape(c) for c in head)
    if len(text) > limit:
        shown += f"...[{len(text) - limit} more characters]"
    return shown


def printable(text: object, *, limit: int = NAME_LIMIT) -> str:
    """`text` as one line of visible characters: newlines, tabs, escape sequences, other control and format
    characters (bidirectional overrides among them) and backslashes shown as Python escapes (`\\n`, `\\x1b`,
    `\\u202e`, `\\\\`), never obeyed; cut after `limit` characters, with the number left out said."""
    return _visible(str(text), limit, backslashes=True)


def quoted(text: object, *, limit: int = NAME_LIMIT) -> str:
    """`printable(text)` in single quotes (a quote inside shown as `\\'`): a name inside a message."""
    return "'" + printable(text, limit=limit).replace("'", "\\'") + "'"


def one_line(message: object, *, limit: int = MESSAGE_LIMIT) -> str:
    """A whole message as one line for a terminal or a log: characters a terminal would obey (newlines, escape
    sequences, control and format characters) shown as escapes, backslashes left as they are (a message
    holds `quoted` names already), cut after `limit` characters."""
    return _visible(str(message), limit, backslashes=False)
