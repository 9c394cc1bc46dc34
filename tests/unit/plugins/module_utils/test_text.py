# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._text import clip, show, split_escaped


@pytest.mark.parametrize(("value", "shown"), [
    ("www", "'www'"),
    ("x\n    server evil 6.6.6.6:80", "'x\\n    server evil 6.6.6.6:80'"),
    ("it's", "'it\\'s'"),
    ("a\\b", "'a\\\\b'"),
    ("caf\u00e9", "'caf\\xe9'"),
    (5, "'5'"),
    (None, "'None'"),
    (["a"], "'[\\'a\\']'"),
])
def test_show_quotes_and_escapes_to_printable_ascii(value, shown):
    assert show(value) == shown


@pytest.mark.parametrize(("value", "shown"), [
    ("bad\nline", "'bad\\x0aline'"),
    ("caf\u00e9", "'caf\u00e9'"),
    ("it's", "'it\\'s'"),
    ("a\\x0a", "'a\\\\x0a'"),
    ("\x7f\t", "'\\x7f\\x09'"),
])
def test_show_keeping_non_ascii_escapes_only_what_breaks_a_line_or_a_quote(value, shown):
    assert show(value, keep_non_ascii=True) == shown


def test_show_cuts_long_values_before_escaping():
    assert show("v" * 100) == "'" + "v" * 64 + "...'"
    assert show("\n" * 100, 3) == "'\\n\\n\\n...'"
    assert show("9" * 5000, 80, keep_non_ascii=True) == "'" + "9" * 80 + "...'"
    assert clip("\n" * 10, 2, keep_non_ascii=True) == "\\x0a\\x0a..."


@pytest.mark.parametrize("value", ["x\ny", "x\ry", "x\x00y", "x\u2028y", "x\x85y"])
@pytest.mark.parametrize("keep_non_ascii", [False, True])
def test_a_shown_value_never_breaks_a_line(value, keep_non_ascii):
    shown = show(value, keep_non_ascii=keep_non_ascii)
    assert not any(char in shown for char in "\n\r\x00")
    if not keep_non_ascii:
        assert shown.isascii() and shown.isprintable()


@pytest.mark.parametrize(("text", "parts"), [
    ("hello", ["hello"]),
    ("a,b", ["a", "b"]),
    ("server_aliases=a.x\\,b.x,hello", ["server_aliases=a.x,b.x", "hello"]),
    ("a,,b,", ["a", "b"]),
    ("", []),
    ("\\", ["\\"]),
    ("a\\b,\\,", ["a\\b", ","]),
    ("x\\\\,y", ["x\\,y"]),
    (" a , b ", [" a ", " b "]),
])
def test_split_escaped(text, parts):
    assert split_escaped(text) == parts


def test_split_escaped_strip_drops_blank_parts():
    assert split_escaped(" a\\, b , ,c ", strip=True) == ["a, b", "c"]


def test_split_escaped_other_separators():
    assert split_escaped("127.0.0.1.nip.io:test", ":") == ["127.0.0.1.nip.io", "test"]
    assert split_escaped("a\\:b:c", ":") == ["a:b", "c"]
    assert split_escaped("a\\,b:c", ":") == ["a\\,b", "c"]
    assert split_escaped("a::b", "::") == ["a", "b"]
