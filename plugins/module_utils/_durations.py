# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Go durations, read exactly as Go's ``time.ParseDuration`` (and so Consul) reads them.

PRIVATE to the collection. The one parser for check intervals, timeouts, TTLs and
deregister delays, used by the consul_service module, the registrator's container rules and
its first probe. Which values a caller accepts (above zero, zero allowed, a default when
absent) is that caller's rule and stays with it.
"""

from __future__ import annotations

import re

# Nanoseconds per unit, Go's table: both micro signs (U+00B5 and U+03BC) are accepted.
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
# One "<digits>[.<digits>]<unit>" part. [0-9], not \d: Go reads ASCII digits only. A unit
# run that is not exactly one unit ("1sm", "1hm") leaves a part without digits, refused below.
_PART_RE = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_LIMIT = 1 << 63  # Go's Duration is an int64 of nanoseconds


def _fraction_ns(digits: str, unit: int) -> int:
    """What Go adds for the digits after the point: it stops reading digits at uint64 overflow
    and scales in float64, so the result is Go's to the nanosecond."""
    value, scale = 0, 1.0
    for digit in digits:
        if value > (_LIMIT - 1) // 10 or value * 10 + int(digit) > _LIMIT:
            break
        value = value * 10 + int(digit)
        scale *= 10
    return int(float(value) * (float(unit) / scale)) if value else 0


def parse_duration_ns(value: object) -> int | None:
    """Nanoseconds in a Go duration string, or None where ``time.ParseDuration`` fails.

    ``[-+]?([0-9]*(.[0-9]*)?unit)+`` with at least one digit in every part (``1h30m``, ``1.5s``,
    ``.5s``, ``300ms``, ``-2s``), or ``0`` alone with an optional sign. Units: ns, us (also with
    either micro sign, U+00B5 or U+03BC), ms, s, m, h. The result lies in Go's int64 range,
    about 292 years either way.
    """
    if not isinstance(value, str):
        return None
    text, negative = value, False
    if text[:1] in ("-", "+"):
        text, negative = text[1:], text[0] == "-"
    if text == "0":
        return 0
    if text == "":
        return None
    total, position = 0, 0
    while position < len(text):
        match = _PART_RE.match(text, position)
        if match is None:
            return None
        whole, fraction, unit = match.group(1), match.group(2) or "", _UNIT_NS[match.group(3)]
        if whole == "" and fraction == "":
            return None  # no digits: "s", ".s", "1sm"
        whole = whole.lstrip("0")  # Go allows leading zeros; int() refuses over 4300 digits
        if len(whole) > 19:
            return None  # past Go's range
        total += int(whole or "0") * unit + _fraction_ns(fraction, unit)
        if total > _LIMIT:
            return None
        position = match.end()
    if negative:
        return -total
    return total if total < _LIMIT else None


def parse_duration(value: object) -> float | None:
    """Seconds in a Go duration string (``10s``, ``1m30s``, ``500ms``), or None if it is not one."""
    nanoseconds = parse_duration_ns(value)
    return None if nanoseconds is None else nanoseconds / 1e9
