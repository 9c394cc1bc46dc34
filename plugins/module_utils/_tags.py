# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Consul service tags: routing tags, option tags, metadata and host names.

These are docs/RULES.md §1-§5 and §7. Everything here is pure, stdlib-only and proxy-neutral
so the modules, the filters and the agents share one implementation; the option keywords and
their values come from the option registry (_options).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.autoproxy.stack.plugins.module_utils._options import ROUTING_OPTIONS, RoutingOption
from ansible_collections.autoproxy.stack.plugins.module_utils._text import show

if TYPE_CHECKING:  # typing.TypeGuard is Python 3.10+; module_utils run on older targets too
    from typing import TypeGuard

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# The look-ahead caps the total length; \Z (not $) so a trailing newline never matches.
HOST_FRAGMENT_RE = re.compile(r"(?=[A-Za-z0-9.-]{1,253}\Z)" + _LABEL + r"(?:\." + _LABEL + r")*\Z")

SERVICE_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,200}\Z")
BACKEND_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,255}\Z")
METADATA_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
# Metadata is never rendered, but it is logged and returned, so keep it printable and unquoted.
METADATA_VALUE_RE = re.compile(r"[!$%&()*+,\-./0-9:;<=>?@A-Z\[\]^_a-z{|}~]{0,255}\Z")
ALIAS_KEYWORDS = frozenset(("server_alias", "server_aliases"))
# The keywords a key=value tag may start with; the routing options are declared in _options.
OPTION_KEYWORDS = frozenset(ROUTING_OPTIONS) | ALIAS_KEYWORDS


@dataclass(frozen=True)
class ParsedTags:
    """The meaning of one instance's tags; see parse_tags()."""

    routing: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def is_host_fragment(value: Any) -> bool:
    """True if value is a host name or a dot-separated part of one."""
    return isinstance(value, str) and HOST_FRAGMENT_RE.match(value) is not None


def host_for_untagged(name: str) -> str:
    """docs/RULES.md §2: the host of a service without routing tags (``www_hello`` -> ``www.hello``)."""
    return name.replace("_", ".").lower()


def valid_service_name(name: Any) -> TypeGuard[str]:
    """True if a Consul service name can be routed: safe as a backend name and as a host."""
    return (
        isinstance(name, str) and SERVICE_NAME_RE.match(name) is not None and is_host_fragment(host_for_untagged(name))
    )


def host_for_tag(name: str, routing_tag: str) -> str:
    """docs/RULES.md §1: the host of a tagged service (``www`` + ``hello`` -> ``www.hello``).

    The service part gets §2's ``_`` -> ``.`` too, so a name valid for §2 stays a valid host.
    """
    return f"{host_for_untagged(name)}.{routing_tag.lower()}"


class _TagParser:
    """Accumulates the result of parse_tags(); one instance per call."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.routing: list[str] = []
        self.aliases: list[str] = []
        self.options: dict[str, Any] = {}
        self.metadata: dict[str, str] = {}
        self.warnings: list[str] = []

    def warn(self, tag: Any, reason: str) -> None:
        self.warnings.append(f"service {show(self.service)}: tag {show(tag)} dropped: {reason}")

    def add(self, tag: Any) -> None:
        if not isinstance(tag, str):
            self.warn(tag, "not a string")
            return
        # A space after a comma in SERVICE_TAGS is a common slip; anything else stays strict.
        tag = tag.strip(" ")
        if tag == "":
            self.warn(tag, "empty tag")
        elif self.is_bare_option(tag):
            self.set_option(tag, tag, True)
        elif is_host_fragment(tag):
            self.add_unique(self.routing, tag.lower())
        elif "=" in tag:
            key, value = tag.split("=", 1)
            if key in ALIAS_KEYWORDS:
                self.add_aliases(tag, key, value)
            elif key in ROUTING_OPTIONS:
                self.add_option(tag, ROUTING_OPTIONS[key], value)
            else:
                self.add_metadata(tag, key, value)
        else:
            self.warn(tag, "neither a host name fragment, an option nor key=value metadata")

    @staticmethod
    def add_unique(items: list[str], item: str) -> None:
        if item not in items:
            items.append(item)

    def set_option(self, tag: str, key: str, value: Any) -> None:
        if key in self.options and self.options[key] != value:
            self.warn(tag, f"{key} already set to {show(str(self.options[key]))}")
            return
        self.options[key] = value

    @staticmethod
    def is_bare_option(tag: str) -> bool:
        option = ROUTING_OPTIONS.get(tag)
        return option is not None and option.value.bare

    def add_option(self, tag: str, option: RoutingOption, text: str) -> None:
        """A ``key=value`` tag of a routing option."""
        value = option.value.parse(text)
        if value is None:
            self.warn(tag, option.requirement())
        elif value is not False:
            # A flag set to false is the same as no tag: nothing to store or to conflict with.
            self.set_option(tag, option.name, value)

    def add_aliases(self, tag: str, key: str, value: str) -> None:
        names = value.split(",") if key == "server_aliases" else [value]
        for name in names:
            if is_host_fragment(name):
                self.add_unique(self.aliases, name.lower())
            else:
                self.warn(tag, f"alias {show(name)} is not a valid host name")

    def add_metadata(self, tag: str, key: str, value: str) -> None:
        if METADATA_KEY_RE.match(key) is None:
            self.warn(tag, "metadata key must be a letter then letters, digits, '_', '.', '-' (max 64)")
        elif METADATA_VALUE_RE.match(value) is None:
            self.warn(tag, "metadata value must be printable ASCII without spaces, quotes, '#' or '\\' (max 255)")
        elif key in self.metadata and self.metadata[key] != value:
            self.warn(tag, f"metadata {show(key)} already set")
        else:
            self.metadata[key] = value

    def result(self) -> ParsedTags:
        return ParsedTags(
            routing=tuple(self.routing),
            aliases=tuple(self.aliases),
            options=dict(self.options),
            metadata=dict(self.metadata),
            warnings=tuple(self.warnings),
        )


def parse_tags(tags: Iterable[Any] | None, *, service: str = "") -> ParsedTags:
    """Sort an instance's tags into routing tags, aliases, options and metadata (docs/RULES.md §1, §4, §5, §7).

    A single string is one tag (use _text.split_escaped() for a SERVICE_TAGS value). Bad tags are
    dropped; each leaves a warning naming the service and the tag. The first value of a repeated
    option wins.
    """
    parser = _TagParser(service)
    if isinstance(tags, str):
        tags = [tags]
    for tag in tags or ():
        parser.add(tag)
    return parser.result()


def normalise_domains(domains: Any) -> tuple[list[str], list[str]]:
    """Valid, lower-cased, de-duplicated domains and warnings for the rest.

    Accepts a list or an ``HAPROXY_DOMAIN``-style ``:``-separated string.
    """
    if domains is None:
        return [], []
    if isinstance(domains, str):
        domains = [part for part in domains.split(":") if part != ""]
    kept: list[str] = []
    warnings: list[str] = []
    for domain in domains:
        candidate = domain.strip(".").lower() if isinstance(domain, str) else domain
        if not is_host_fragment(candidate):
            warnings.append(f"domain {show(domain)} dropped: not a valid host name")
        elif candidate not in kept:
            kept.append(candidate)
    return kept, warnings


def expand_hosts(hosts: Iterable[str], domains: Iterable[str]) -> tuple[list[str], list[str]]:
    """docs/RULES.md §3: each host as itself and under every domain; too-long results dropped with a warning."""
    result: list[str] = []
    rejected: list[str] = []
    for host in hosts:
        for candidate in [host] + [f"{host}.{domain}" for domain in domains]:
            if not is_host_fragment(candidate):
                rejected.append(candidate)
            elif candidate not in result:
                result.append(candidate)
    return result, rejected


def memberships(name: str, parsed: ParsedTags) -> list[tuple[str | None, list[str]]]:
    """(routing tag, hosts before domains) for each backend an instance joins.

    One backend per routing tag (docs/RULES.md §1), or one untagged backend (§2); each answers to its
    own host and to §4's aliases.
    """
    routed: list[tuple[str | None, str]] = [(tag, host_for_tag(name, tag)) for tag in parsed.routing]
    return [
        (tag, [host] + [alias for alias in parsed.aliases if alias != host])
        for tag, host in routed or [(None, host_for_untagged(name))]
    ]


def base_hosts(name: str, parsed: ParsedTags) -> list[str]:
    """Hosts of one instance before domains, over all its backends."""
    hosts = [backend_hosts[0] for _tag, backend_hosts in memberships(name, parsed)]
    return hosts + [alias for alias in parsed.aliases if alias not in hosts]


def service_hosts(name: str, tags: Iterable[Any] | None, domains: Any) -> list[str]:
    """Every host name an instance of service ``name`` with ``tags`` answers to (docs/RULES.md §1-§4).

    An unroutable service name gives an empty list.
    """
    if not valid_service_name(name):
        return []
    parsed = parse_tags(tags, service=name)
    kept_domains = normalise_domains(domains)[0]
    return expand_hosts(base_hosts(name, parsed), kept_domains)[0]
