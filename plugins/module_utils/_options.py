# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The routing options a service sets with tags (``weight=3``, ``sticky_session``): one entry each.

A RoutingOption declares everything about one option: its tag keyword, how its value is read
and bounded, whether it belongs to each server or to the whole backend, how the proxy spells it
in its configuration and whether a running proxy can change it without a reload. Every reader
works from ROUTING_OPTIONS: tag parsing (_tags), the routing table (_routing), the HAProxy
rendering, validation and Runtime API plan (_haproxy_*), and the README's option table
(option_table()). Adding an option is one entry here plus its tests.

Stdlib only and proxy-neutral, except ``haproxy``: the words HAProxy uses for the option,
which only the HAProxy backend reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Scope = Literal["server", "backend"]

_DIGITS_RE = re.compile(r"[0-9]{1,7}\Z")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


class OptionValue(Protocol):
    """How one option's value is read from a tag and checked in a routing table."""

    @property
    def bare(self) -> bool:
        """True: the keyword alone is a tag (``sticky_session``), meaning ``parse("true")``."""

    @property
    def placeholder(self) -> str:
        """The value's name in ``key=PLACEHOLDER`` for the README."""

    def parse(self, text: str) -> Any:
        """The value of ``key=text``; None when the text is not valid."""

    def valid(self, value: Any) -> bool:
        """True if ``value`` (from a routing table) is one this option can take."""

    def requirement(self, key: str) -> str:
        """What a valid value is, for warnings: ``weight must be an integer 0-256``."""

    def describe(self) -> str:
        """The values for the README table, in Markdown: ``0–256``."""


@dataclass(frozen=True)
class IntRange:
    """A decimal integer from ``low`` to ``high``; ASCII digits only (no sign, space or ``_``)."""

    low: int
    high: int
    bare: bool = False
    placeholder: str = "N"

    def parse(self, text: str) -> int | None:
        # int() alone would accept '+5', ' 5', '5_0' and non-ASCII digits.
        if _DIGITS_RE.match(text) is None:
            return None
        number = int(text)
        return number if self.low <= number <= self.high else None

    def valid(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def requirement(self, key: str) -> str:
        return f"{key} must be an integer {self.low}-{self.high}"

    def describe(self) -> str:
        return f"{self.low}–{self.high}"


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of words, case-sensitive."""

    values: tuple[str, ...]
    placeholder: str = "VALUE"
    bare: bool = False

    def parse(self, text: str) -> str | None:
        return text if text in self.values else None

    def valid(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def requirement(self, key: str) -> str:
        return f"{key} must be one of {', '.join(self.values)}"

    def describe(self) -> str:
        return ", ".join(f"`{value}`" for value in self.values)


@dataclass(frozen=True)
class Flag:
    """On when present: the bare keyword, or ``key=true|yes|on|1``; ``key=false|no|off|0`` sets nothing."""

    bare: bool = True
    placeholder: str = ""

    def parse(self, text: str) -> bool | None:
        lowered = text.lower()
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        return None

    def valid(self, value: Any) -> bool:
        return isinstance(value, bool)

    def requirement(self, key: str) -> str:
        return f"{key} takes no value or true/false"

    def describe(self) -> str:
        return "no value (or `true`/`false`)"


def _no_lines(_value: Any) -> list[str]:
    return []


def _no_words(_value: Any, _server: str) -> list[str]:
    return []


@dataclass(frozen=True)
class HaproxyForm:
    """How HAProxy spells an option; read only by the HAProxy backend (_haproxy_*.py).

    ``backend_lines(value)`` are lines of the backend section, given the option's value or its
    default; ``server_words(value, server_name)`` follow each ``server`` line when the option is
    set. ``runtime_words(target, value)`` is the Runtime API command that changes it on a running
    server (``target`` is ``proxy/server``), None when only a reload can; ``runtime_unset`` is
    the value it sends when the option is taken away.
    """

    backend_lines: Callable[[Any], list[str]] = _no_lines
    server_words: Callable[[Any, str], list[str]] = _no_words
    runtime_words: Callable[[str, Any], list[str]] | None = None
    runtime_unset: Any = None


@dataclass(frozen=True)
class RoutingOption:
    """One routing option. ``scope`` ``server``: each instance's own value goes to its server;
    ``backend``: the first instance (in the routing table's order) that sets it decides for the
    whole backend. ``default`` is the value when no instance sets it (None: unset)."""

    name: str
    scope: Scope
    value: OptionValue
    meaning: str
    example: str
    haproxy: HaproxyForm = field(default_factory=HaproxyForm)
    default: Any = None

    @property
    def runtime(self) -> bool:
        """True when a running proxy can change this option without a reload."""
        return self.haproxy.runtime_words is not None

    def requirement(self) -> str:
        return self.value.requirement(self.name)

    def tag_form(self) -> str:
        """How the tag is written: ``weight=N``, ``sticky_session``."""
        return self.name if self.value.bare else f"{self.name}={self.value.placeholder}"


def _declare(*options: RoutingOption) -> dict[str, RoutingOption]:
    return {option.name: option for option in options}


BALANCE_ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "random")

# Declaration order is rendering order: backend lines, then the words of each server line.
ROUTING_OPTIONS: dict[str, RoutingOption] = _declare(
    RoutingOption(
        name="balance",
        scope="backend",
        value=Choice(BALANCE_ALGORITHMS, placeholder="ALGO"),
        default="roundrobin",
        meaning="how the backend spreads requests over its servers",
        example="balance=leastconn",
        haproxy=HaproxyForm(backend_lines=lambda value: [f"balance {value}"]),
    ),
    RoutingOption(
        name="sticky_session",
        scope="backend",
        value=Flag(),
        default=False,
        meaning="cookie `SRVID` pins a client to a server",
        example="SERVICE_TAGS=shop,sticky_session",
        haproxy=HaproxyForm(
            backend_lines=lambda on: ["cookie SRVID insert indirect nocache"] if on else [],
            server_words=lambda on, server: ["cookie", server] if on else [],
        ),
    ),
    RoutingOption(
        name="maxconn",
        scope="backend",
        value=IntRange(1, 1000000),
        meaning="per-server connection limit",
        example="maxconn=100",
        haproxy=HaproxyForm(
            server_words=lambda value, _server: ["maxconn", str(value)],
            runtime_words=lambda target, value: ["set", "maxconn", "server", target, str(value)],
            runtime_unset=0,  # no limit
        ),
    ),
    RoutingOption(
        name="weight",
        scope="server",
        value=IntRange(0, 256),
        meaning="the server's weight",
        example="weight=3",
        haproxy=HaproxyForm(
            server_words=lambda value, _server: ["weight", str(value)],
            runtime_words=lambda target, value: ["set", "server", target, "weight", str(value)],
            runtime_unset=1,  # HAProxy's default weight
        ),
    ),
)


def routing_option(key: str) -> RoutingOption | None:
    """The option a tag keyword names, or None."""
    return ROUTING_OPTIONS.get(key)


def options_of(scope: Scope) -> list[RoutingOption]:
    """The options of one scope, in declaration order."""
    return [option for option in ROUTING_OPTIONS.values() if option.scope == scope]


def option_table() -> str:
    """The README's table of option tags, in Markdown, one row per option."""
    rows = ["| option tag | values | scope | applied without a reload | meaning | example |",
            "| --- | --- | --- | --- | --- | --- |"]
    for option in ROUTING_OPTIONS.values():
        default = f" (default `{option.default}`)" if option.default not in (None, False) else ""
        rows.append(
            f"| `{option.tag_form()}` | {option.value.describe()}{default} | {option.scope} "
            f"| {'yes' if option.runtime else 'no'} | {option.meaning} | `{option.example}` |"
        )
    return "\n".join(rows) + "\n"
