# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Text helpers the rules share: a value quoted for a one-line message, and a list split at
separators a backslash can escape. Pure and stdlib-only."""

from __future__ import annotations

import re

SHOWN_CHARS = 64
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def clip(value: object, limit: int = SHOWN_CHARS, *, keep_non_ascii: bool = False) -> str:
    """``value`` as text that fits on one line of a log or an error, without quotes around it.

    A non-string is shown as its ``repr()``. The first ``limit`` characters are kept (then ``...``),
    and escaped so nothing a container or a tag carries can start a new line: ``\\`` and ``'``
    get a backslash, control characters become escapes. By default every character outside
    printable ASCII becomes a Python escape (``\\n``, ``\\xe9``); ``keep_non_ascii`` keeps letters
    like ``é`` readable and writes control characters as ``\\xNN`` (the container warnings' form).
    """
    text = value if isinstance(value, str) else repr(value)
    suffix = "..." if len(text) > limit else ""
    text = text[:limit]
    if keep_non_ascii:
        text = _CONTROL_RE.sub(lambda match: f"\\x{ord(match.group()):02x}", text.replace("\\", "\\\\"))
    else:
        text = text.encode("unicode_escape").decode("ascii")
    return text.replace("'", "\\'") + suffix


def show(value: object, limit: int = SHOWN_CHARS, *, keep_non_ascii: bool = False) -> str:
    """``value`` in single quotes for a message: ``show("www")`` is ``'www'``; see clip()."""
    return "'" + clip(value, limit, keep_non_ascii=keep_non_ascii) + "'"


def split_escaped(text: str, separator: str = ",", *, strip: bool = False) -> list[str]:
    """Split ``text`` at ``separator``, where a backslash before the separator makes it a literal one.

    registrator's rule for ``SERVICE_TAGS`` and ``-tags``: ``split_escaped("a\\\\,b,c")`` is
    ``["a,b", "c"]``; a backslash before anything else stays. Empty parts are dropped; with
    ``strip``, parts are stripped of surrounding whitespace first.
    """
    parts = [""]
    index = 0
    escaped = "\\" + separator
    while index < len(text):
        if text.startswith(escaped, index):
            parts[-1] += separator
            index += len(escaped)
            continue
        if text.startswith(separator, index):
            parts.append("")
            index += len(separator)
            continue
        parts[-1] += text[index]
        index += 1
    if strip:
        parts = [part.strip() for part in parts]
    return [part for part in parts if part != ""]
