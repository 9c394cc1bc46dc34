# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""From a Consul health snapshot to a routing table: backends, their servers and host names.

The table is plain JSON-serialisable data in a deterministic order, so it can be diffed to decide
between a Runtime API update and a reload, and returned by an Ansible module.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any, List, Optional, Tuple

from ansible_collections.autoproxy.stack.plugins.module_utils._addresses import MAX_PORT, host_port, parse_port
from ansible_collections.autoproxy.stack.plugins.module_utils._options import options_of
from ansible_collections.autoproxy.stack.plugins.module_utils._tags import (
    BACKEND_NAME_RE,
    ParsedTags,
    expand_hosts,
    is_host_fragment,
    memberships,
    normalise_domains,
    parse_tags,
    valid_service_name,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._text import show

SERVER_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_SERVER_NAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_ID_LENGTH = 1024
# Consul registers its servers' RPC port as service "consul": not HTTP, never routed. Its UI
# is routed through the service the consul role registers (consul-admin_infra).
UNROUTED_SERVICES = frozenset(("consul",))


def backend_name(name: str, routing_tag: str | None = None) -> str:
    """``<tag>_<name>_backend`` (docs/RULES.md §1) or ``<name>_backend`` (§2); ValueError if unroutable."""
    if not valid_service_name(name):
        raise ValueError(f"invalid service name {show(name)}")
    if routing_tag is None:
        return f"{name}_backend"
    if not is_host_fragment(routing_tag):
        raise ValueError(f"invalid routing tag {show(routing_tag)} for service {show(name)}")
    return f"{routing_tag.lower()}_{name}_backend"


def server_name(instance_id: str, node: str = "") -> str:
    """A stable, HAProxy-safe server name for one instance: readable id prefix plus a hash.

    The node is part of the hash because Consul ids are only unique per agent.
    """
    digest = hashlib.sha1((f"{node}/{instance_id}").encode()).hexdigest()[:8]
    return f"{_SERVER_NAME_UNSAFE_RE.sub('_', instance_id)[:48]}-{digest}"


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}\Z")


def is_ip_literal(value: Any) -> bool:
    """True for an IPv4 or IPv6 address without zone index."""
    if not isinstance(value, str) or "%" in value:
        return False
    if _IPV4_RE.match(value):
        return True  # the common case, without ipaddress's slower parse (3 calls per server per render)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def valid_address(value: Any) -> bool:
    """True for an address HAProxy can use on a server line: IP literal or host name."""
    return is_ip_literal(value) or is_host_fragment(value)


def _backend_option_names() -> list[str]:
    # Sorted: the first instance to set an option decides, whatever order the options are declared in.
    return sorted(option.name for option in options_of("backend"))


def _server_option_names() -> list[str]:
    return [option.name for option in options_of("server")]


class _Instance:
    """One checked instance with its parsed tags."""

    def __init__(self, raw: Mapping[str, Any], port: int, parsed: ParsedTags) -> None:
        self.service: str = raw["service"]
        self.id: str = raw["id"]
        self.node: str = raw.get("node") or ""
        self.address: str = raw["address"]
        self.port = port
        self.passing = raw.get("passing") is True
        self.parsed = parsed
        self.server_name = server_name(self.id, self.node)

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.service, self.id, self.node)


class _Shape:
    """What a service name and tag list decide, shared by every instance that has the same ones."""

    def __init__(self, service: str, parsed: ParsedTags, domains: list[str]) -> None:
        self.parsed = parsed
        self.warnings = list(parsed.warnings)
        # (backend name, routing tag, hosts with domains) for each backend the instance joins.
        self.memberships: list[tuple[str, str | None, list[str]]] = []
        for tag, hosts in memberships(service, parsed):
            expanded, rejected = expand_hosts(hosts, domains)
            self.warnings.extend(
                f"service {show(service)}: host {show(host)} dropped: longer than a host name may be"
                for host in rejected
            )
            self.memberships.append((backend_name(service, tag), tag, expanded))


class _ShapeCache:
    """Shapes by (service, tags); ``used`` holds those one build asked for, so the rest can go.

    Instances of one service nearly always share their tags: they are parsed once per build, and
    in a RoutingTableBuilder once for as long as they stay in the catalog.
    """

    def __init__(self, known: dict[Any, _Shape] | None = None) -> None:
        self.known = known or {}
        self.used: dict[Any, _Shape] = {}

    def shape(self, service: str, tags: Any, domains: list[str]) -> _Shape:
        tag_key = _tag_key(tags)
        if tag_key is None:
            return _Shape(service, parse_tags(tags, service=service), domains)
        shape = self.used.get((service, tag_key)) or self.known.get((service, tag_key))
        if shape is None:
            shape = _Shape(service, parse_tags(tags, service=service), domains)
        self.keep(service, tag_key, shape)
        return shape

    def keep(self, service: str, tag_key: tuple[str, ...], shape: _Shape) -> None:
        """Mark a shape as used by this build (so it stays cached), also when it came from elsewhere."""
        self.used[(service, tag_key)] = shape


def _tag_key(tags: Any) -> tuple[str, ...] | None:
    """A tag list as a cache key: a tuple when it is a list of text, else None (not cached)."""
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return None
    return tuple(tags)


_Checked = Tuple[Optional[_Instance], Optional[_Shape], List[str]]


class _InstanceCache:
    """Checked instances by every field _check_instance() reads; ``used`` holds those one build met.

    Between two builds of the proxy agent most instances stay as they were: each is checked (and
    its server name hashed) once for as long as it stays the same in the catalog. Only entries of
    the usual types are kept (text fields, an int port, a list of text tags), so values that are
    equal but of another type (port ``1`` and ``True``) never share a result.
    """

    def __init__(self, shapes: _ShapeCache, known: dict[Any, _Checked] | None = None) -> None:
        self.shapes = shapes
        self.known = known or {}
        self.used: dict[Any, _Checked] = {}

    def check(self, raw: Any, domains: list[str]) -> _Checked:
        key = _instance_key(raw)
        if key is None:
            return _check_instance(raw, domains, self.shapes)
        checked = self.used.get(key) or self.known.get(key)
        if checked is None:
            checked = _check_instance(raw, domains, self.shapes)
        elif checked[1] is not None:
            service, *_unused, tag_key = key
            self.shapes.keep(service, tag_key, checked[1])
        self.used[key] = checked
        return checked


def _instance_key(raw: Any) -> tuple[Any, ...] | None:
    """(service, id, node, address, port, passing, tags) of a normalised entry of the usual types, else None."""
    if not isinstance(raw, dict):
        return None
    get = raw.get
    service, instance_id, node, address, port, tags = (get("service"), get("id"), get("node"), get("address"),
                                                       get("port"), get("tags"))
    # An int port, never a bool, a float or text: equal keys must mean the same check result.
    tag_key = _tag_key(tags)
    if not (isinstance(service, str) and isinstance(instance_id, str) and isinstance(address, str)
            and isinstance(port, int) and not isinstance(port, bool) and (node is None or isinstance(node, str))
            and tag_key is not None):
        return None
    return (service, instance_id, node, address, port, get("passing") is True, tag_key)


def _check_instance(
    raw: Any, domains: list[str], shapes: _ShapeCache
) -> tuple[_Instance | None, _Shape | None, list[str]]:
    """Validate one normalised health entry; (None, None, warnings) if it must be dropped."""
    if not isinstance(raw, Mapping):
        return None, None, [f"instance {show(raw)} dropped: not a mapping"]
    service, instance_id = raw.get("service"), raw.get("id")

    def dropped(reason: str) -> tuple[None, None, list[str]]:
        return None, None, [f"service {show(service)} instance {show(instance_id)} dropped: {reason}"]

    if not valid_service_name(service):
        return dropped("service name must be 1-200 of A-Z a-z 0-9 _ . - and form a host name")
    if not isinstance(instance_id, str) or not instance_id or len(instance_id) > _MAX_ID_LENGTH:
        return dropped("id must be a non-empty string")
    node = raw.get("node")
    if node is not None and not isinstance(node, str):
        return dropped("node must be a string")
    if not valid_address(raw.get("address")):
        return dropped(f"address {show(raw.get('address'))} is not an IP address or host name")
    port = parse_port(raw.get("port"))
    if port is None:
        return dropped(f"port {show(raw.get('port'))} is not an integer 1-{MAX_PORT}")
    tags = raw.get("tags")
    if tags is not None and (isinstance(tags, (str, bytes, Mapping)) or not isinstance(tags, Iterable)):
        return dropped("tags must be a list")
    shape = shapes.shape(service, tags, domains)
    return _Instance(raw, port, shape.parsed), shape, shape.warnings


class _Backend:
    """A backend being assembled from its instances (sorted by service, id, node)."""

    def __init__(self, name: str, service: str, routing_tag: str | None) -> None:
        self.name = name
        self.service = service
        self.routing_tag = routing_tag
        self.hosts: list[str] = []
        self.options: dict[str, Any] = {}
        self.servers: list[dict[str, Any]] = []
        self.server_names: dict[str, str] = {}

    def add_options(self, instance: _Instance, warnings: list[str], keys: list[str]) -> None:
        for key in keys:
            if key not in instance.parsed.options:
                continue
            value = instance.parsed.options[key]
            if key not in self.options:
                self.options[key] = value
            elif self.options[key] != value:
                warnings.append(
                    f"service {show(self.service)} instance {show(instance.id)}: {key} {show(str(value))} ignored "
                    f"in backend {show(self.name)}, which uses {show(str(self.options[key]))} from an earlier instance"
                )

    def add_server(self, instance: _Instance, warnings: list[str], keys: list[str]) -> None:
        name = instance.server_name
        if name in self.server_names:
            warnings.append(
                f"service {show(instance.service)} instance {show(instance.id)} on node {show(instance.node)} "
                f"dropped: duplicate of an instance already in backend {show(self.name)}"
            )
            return
        self.server_names[name] = instance.id
        server: dict[str, Any] = {"name": name, "id": instance.id, "address": instance.address, "port": instance.port}
        for key in keys:
            if key in instance.parsed.options:
                server[key] = instance.parsed.options[key]
        self.servers.append(server)

    def as_dict(self, won_hosts: list[str]) -> dict[str, Any]:
        return {
            "service": self.service,
            "routing_tag": self.routing_tag,
            "hosts": sorted(won_hosts),
            "options": {key: self.options[key] for key in sorted(self.options)},
            "servers": sorted(self.servers, key=lambda server: server["name"]),
        }


def _collect(
    instances: Iterable[Any], domains: list[str], warnings: list[str], checks: _InstanceCache
) -> dict[str, _Backend]:
    checked: list[tuple[_Instance, _Shape]] = []
    for raw in instances:
        if isinstance(raw, dict) and raw.get("service") in UNROUTED_SERVICES:
            continue
        instance, shape, instance_warnings = checks.check(raw, domains)
        warnings.extend(instance_warnings)
        if instance is not None and shape is not None:
            checked.append((instance, shape))
    backends: dict[str, _Backend] = {}
    backend_keys, server_keys = _backend_option_names(), _server_option_names()
    for instance, shape in sorted(checked, key=lambda item: item[0].sort_key):
        for name, tag, hosts in shape.memberships:
            backend = _claim_backend(backends, name, instance, tag, warnings)
            if backend is None:
                continue
            backend.hosts.extend(host for host in hosts if host not in backend.hosts)
            backend.add_options(instance, warnings, backend_keys)
            if instance.passing:
                backend.add_server(instance, warnings, server_keys)
    return backends


def _claim_backend(
    backends: dict[str, _Backend], name: str, instance: _Instance, tag: str | None, warnings: list[str]
) -> _Backend | None:
    """The backend an instance joins; None when another service already owns that name.

    Names can collide across services (service ``www`` tagged ``hello`` and service ``hello_www``
    both give ``hello_www_backend``); the first service in sort order keeps it.
    """
    backend = backends.get(name)
    if backend is None:
        if BACKEND_NAME_RE.match(name) is None:
            warnings.append(f"service {show(instance.service)}: backend name {show(name)} dropped: too long")
            return None
        backend = backends[name] = _Backend(name, instance.service, tag)
    elif backend.service != instance.service or backend.routing_tag != tag:
        warnings.append(
            f"service {show(instance.service)} instance {show(instance.id)} dropped: "
            f"backend {show(name)} already belongs to service {show(backend.service)}"
        )
        return None
    return backend


def _resolve_hosts(backends: dict[str, _Backend], warnings: list[str]) -> dict[str, str]:
    """Map each host to one backend; on conflict the sorted-first backend name wins."""
    owner: dict[str, str] = {}
    lost: dict[tuple[str, str], list[str]] = {}
    for name in sorted(backends):
        for host in backends[name].hosts:
            if host in owner:
                lost.setdefault((owner[host], name), []).append(host)
            else:
                owner[host] = name
    for (winner, loser), hosts in lost.items():
        warnings.append(
            f"backend {show(loser)} (service {show(backends[loser].service)}) loses host(s) "
            f"{', '.join(show(host) for host in sorted(hosts))} to backend {show(winner)} "
            f"(service {show(backends[winner].service)}), which sorts first"
        )
    return {host: owner[host] for host in sorted(owner)}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def build_routing_table(instances: Iterable[Any], domains: Any) -> dict[str, Any]:
    """Build the routing table from normalised Consul health entries (docs/RULES.md §1-§9).

    Each entry is ``{"service", "id", "node", "address", "port", "tags", "passing"}``.
    ``domains`` is a list (or an ``HAPROXY_DOMAIN``-style ``:``-separated string).

    Returns ``{"backends": {name: {"service", "routing_tag", "hosts", "options", "servers"}},
    "hosts": {host: backend name}, "warnings": [...]}``, every list and dict sorted.

    Only passing instances become servers, but every valid instance, passing or not, defines
    its backends, hosts and options. So a service whose instances all fail keeps its hosts with
    ``servers: []`` and answers 503 instead of vanishing (and letting its host fall through to
    another route), and health flapping never changes the structure of the config, only its
    servers, which the Runtime API can apply without a reload.
    """
    return RoutingTableBuilder().build(instances, domains)


class RoutingTableBuilder:
    """build_routing_table() for a caller that builds again and again (the proxy agent).

    What a service name and tag list decide (parsed tags, backends, hosts with domains) and each
    checked instance are kept from one build to the next, so a build after a change parses only
    the tags and checks only the instances it has not seen; what the last build did not use is
    dropped.
    """

    def __init__(self) -> None:
        self._shapes: dict[Any, _Shape] = {}
        self._checked: dict[Any, _Checked] = {}
        self._domains: Any = None

    def build(self, instances: Iterable[Any], domains: Any) -> dict[str, Any]:
        """The routing table of ``instances``; the same as build_routing_table()."""
        warnings: list[str] = []
        kept_domains, domain_warnings = normalise_domains(domains)
        warnings.extend(domain_warnings)
        if kept_domains != self._domains:
            self._shapes, self._checked, self._domains = {}, {}, kept_domains
        shapes = _ShapeCache(self._shapes)
        checks = _InstanceCache(shapes, self._checked)
        backends = _collect(instances, kept_domains, warnings, checks)
        self._shapes, self._checked = shapes.used, checks.used
        hosts = _resolve_hosts(backends, warnings)
        won: dict[str, list[str]] = {name: [] for name in backends}
        for host, name in hosts.items():
            won[name].append(host)
        return {
            "backends": {name: backends[name].as_dict(won[name]) for name in sorted(backends)},
            "hosts": hosts,
            "warnings": _unique(warnings),
        }


def route_lines(table: dict[str, Any]) -> list[str]:
    """One line per host, ``host -> backend -> servers``, for people reading a run's output."""
    lines = []
    for host, backend in table.get("hosts", {}).items():
        servers = table["backends"][backend]["servers"]
        targets = ", ".join(host_port(server["address"], server["port"]) for server in servers)
        lines.append("{} -> {} -> {}".format(host, backend, targets or "(no passing server: 503)"))
    return lines
