"""Text from files shown to people: visible escapes for whatever a terminal would obey, one line, cut."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ncjax.core.printable import NAME_LIMIT, one_line, printable, quoted


def test_control_and_format_characters_show_as_escapes():
    assert printable("a\nb\r\tc\x1b[2J\x07\u202ed\x85") == "a\\nb\\r\\tc\\x1b[2J\\x07\\u202ed\\x85"
    assert printable("conv2d_1/kernel:0") == "conv2d_1/kernel:0"  # ordinary names are shown as they are
    assert printable("Gewichte_ä_日本") == "Gewichte_ä_日本"


def test_backslashes_are_doubled_in_names_so_an_escape_cannot_be_faked():
    assert printable("a\\nb") == "a\\\\nb" != printable("a\nb")


def test_long_names_are_cut_and_say_how_much_was_left_out():
    assert printable("x" * 500) == "x" * NAME_LIMIT + f"...[{500 - NAME_LIMIT} more characters]"
    assert printable("abcdef", limit=3) == "abc...[3 more characters]"


def test_quoted_escapes_its_own_quote():
    assert quoted("it's\n") == "'it\\'s\\n'"


def test_one_line_leaves_the_escapes_quoted_names_made():
    message = f"layer {quoted('a' + chr(10) + 'b')} failed:\nsecond line\x1b[31m"
    assert one_line(message) == "layer 'a\\nb' failed:\\nsecond line\\x1b[31m"


@given(st.text(), st.integers(1, 200))
def test_whatever_a_name_holds_it_prints_as_one_visible_line(text, limit):
    for shown in (printable(text, limit=limit), quoted(text, limit=limit), one_line(text, limit=limit)):
        assert shown.isprintable() and "\n" not in shown
    assert len(printable(text, limit=limit)) <= 10 * limit + 40  # an escape is at most 10 characters
