# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render a routing table as haproxy.cfg plus a host -> backend map file.

docs/RULES.md §7, defence in depth: the table is re-checked here value by value, although
build_routing_table() already dropped bad input. Anything unexpected raises ValueError, so no
value can ever add a line, a directive or a comment to the config.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Union

from ansible_collections.autoproxy.stack.plugins.module_utils._addresses import MAX_PORT, host_port
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_frontend import (
    ACCESS_LOG_FORMATS,
    CONSUL_UI_ACCESS,
    HOST_EXPRESSION,
    HOST_VARIABLE,
    check_networks,
    consul_ui_hosts,
    consul_ui_rules,
    consul_ui_userlist,
    forwarding_rules,
    log_format_line,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._options import (
    ROUTING_OPTIONS,
    RoutingOption,
    options_of,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import (
    SERVER_NAME_RE,
    is_ip_literal,
    valid_address,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._tags import (
    BACKEND_NAME_RE,
    SERVICE_NAME_RE,
    is_host_fragment,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._text import show

NO_ROUTE_BACKEND = "autoproxy_no_route"
RESERVED_PROXY_NAMES = frozenset((NO_ROUTE_BACKEND, "http", "stats"))
# Empty backends declared in advance, so a new service with default options can be routed
# through the Runtime API (add server + add map) without a reload: HAProxy 2.6-3.0 cannot add
# a backend at runtime.
SPARE_BACKEND_PREFIX = "autoproxy_spare_"
DURATION_RE = re.compile(r"[0-9]{1,9}(?:us|ms|s|m|h|d)?\Z")
PATH_RE = re.compile(r"[A-Za-z0-9_./-]{1,255}\Z")
# stats auth is one whitespace-separated word and '#' starts a comment; quotes and '\' are HAProxy escapes.
STATS_USER_RE = re.compile(r"[!$%&()*+,\-./0-9;<=>?@A-Z\[\]^_a-z{|}~]{1,64}\Z")
STATS_PASSWORD_RE = re.compile(r"[!$%&()*+,\-./0-9:;<=>?@A-Z\[\]^_a-z{|}~]{1,128}\Z")
_INDENT = "    "
# HAProxy's customary stats port. The one literal: the agent, the haproxy_config module and (checked
# by tests/unit/plugins/module_utils/test_agent_settings.py) the docs and the proxy role take it from here.
DEFAULT_STATS_PORT = 1936


@dataclass
class HaproxySettings:
    """Proxy-wide settings; check_* are HAProxy's own server checks (docs/RULES.md §6)."""

    http_port: int = 80
    stats_port: int = DEFAULT_STATS_PORT
    stats_user: str | None = None
    stats_password: str | None = None
    check_interval: str = "2s"
    check_fall: int = 2
    check_rise: int = 1
    # Short on purpose: a server whose container just died drops SYNs instead of refusing them,
    # and the retry on another server (redispatch) only starts when this runs out.
    timeout_connect: str = "1s"
    timeout_client: str = "30s"
    timeout_server: str = "30s"
    # Once a connection is upgraded (WebSocket) or tunnelled, this replaces client/server.
    timeout_tunnel: str = "1h"
    # Longest wait for a whole request header (slow clients hold a connection no longer).
    timeout_http_request: str = "10s"
    hard_stop_after: str = "30s"
    max_reloads: int = 50
    runtime_socket: str = "/run/haproxy/admin.sock"
    # Relative on purpose: 'default-path config' resolves it next to haproxy.cfg.
    map_file: str = "hosts.map"
    # The access log: one line per request on stdout, in log_format "text" or "json".
    log_stdout: bool = False
    log_format: str = "text"
    # Connections HAProxy holds at once (it raises its file-descriptor limit to match), and
    # how many of them each frontend may take.
    maxconn: int = 4096
    http_maxconn: int = 4000
    stats_maxconn: int = 64
    # Clients (other proxies) whose own X-Forwarded-* headers are kept; CIDR networks.
    trusted_networks: tuple[str, ...] = ()
    # The Consul UI's service: its hosts are read-only ("read_only") or open ("full", only with
    # consul_ui_user/consul_ui_password); "" guards nothing.
    consul_ui_service: str = "consul-admin_infra"
    consul_ui_access: str = "read_only"
    consul_ui_user: str | None = None
    consul_ui_password: str | None = None
    # How many spare backends to declare (see SPARE_BACKEND_PREFIX); 0 for a static config.
    spare_backends: int = 0
    # On a reload, idle keep-alive connections of the old worker stay open until their next
    # request, which is answered and then closed, instead of being cut while a request may be
    # on its way (HAProxy 2.6+).
    idle_close_on_response: bool = True
    timeout_http_keep_alive: str = "10s"
    pool_purge_delay: str = "500ms"
    # A connection refused by a stopping server is retried on another one (redispatch).
    retries: int = 3


# "What" a checked value is: text, or a function giving it, for checks made per server, where
# describing every value in advance would cost more than checking it.
_What = Union[str, Callable[[], str]]


def _text(what: _What) -> str:
    return what() if callable(what) else what


def _int(value: Any, low: int, high: int, what: _What) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{_text(what)} must be an integer {low}-{high}, got {show(value)}")
    return value


def _mapping(value: Any, what: _What) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise ValueError(f"{_text(what)} must be a mapping")


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{what} must be a boolean")


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _match(pattern: re.Pattern[str], value: Any, what: _What) -> str:
    if not isinstance(value, str) or pattern.match(value) is None:
        raise ValueError(f"invalid {_text(what)} {show(value)}")
    return value


def _check_settings(settings: HaproxySettings) -> None:
    _int(settings.http_port, 1, MAX_PORT, "http_port")
    _int(settings.stats_port, 1, MAX_PORT, "stats_port")
    if settings.http_port == settings.stats_port:
        raise ValueError("http_port and stats_port must differ")
    for what in ("check_interval", "timeout_connect", "timeout_client", "timeout_server", "timeout_tunnel",
                 "timeout_http_request", "hard_stop_after"):
        _match(DURATION_RE, getattr(settings, what), what)
    _int(settings.check_fall, 1, 1000, "check_fall")
    _int(settings.check_rise, 1, 1000, "check_rise")
    _int(settings.max_reloads, 0, 1000000, "max_reloads")
    _int(settings.spare_backends, 0, 100000, "spare_backends")
    _int(settings.retries, 0, 100, "retries")
    _flag(settings.idle_close_on_response, "idle_close_on_response")
    _match(DURATION_RE, settings.timeout_http_keep_alive, "timeout_http_keep_alive")
    _match(DURATION_RE, settings.pool_purge_delay, "pool_purge_delay")
    _match(PATH_RE, settings.runtime_socket, "runtime_socket")
    _match(PATH_RE, settings.map_file, "map_file")
    _flag(settings.log_stdout, "log_stdout")
    if settings.log_format not in ACCESS_LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(ACCESS_LOG_FORMATS)}, got {show(settings.log_format)}")
    _int(settings.maxconn, 1, 10000000, "maxconn")
    _int(settings.http_maxconn, 1, settings.maxconn, "http_maxconn (at most maxconn)")
    _int(settings.stats_maxconn, 1, settings.maxconn, "stats_maxconn (at most maxconn)")
    check_networks(settings.trusted_networks, "trusted_networks")
    _check_consul_ui(settings)
    if (settings.stats_user is None) != (settings.stats_password is None):
        raise ValueError("stats_user and stats_password must be set together")
    if settings.stats_user is not None:
        _match(STATS_USER_RE, settings.stats_user, "stats_user (no whitespace, quotes, '#', ':' or '\\', max 64)")
        _match(
            STATS_PASSWORD_RE, settings.stats_password, "stats_password (no whitespace, quotes, '#' or '\\', max 128)"
        )


def _check_consul_ui(settings: HaproxySettings) -> None:
    if not isinstance(settings.consul_ui_service, str) or (
            settings.consul_ui_service and SERVICE_NAME_RE.match(settings.consul_ui_service) is None):
        raise ValueError(f"invalid consul_ui_service {show(settings.consul_ui_service)}")
    if settings.consul_ui_access not in CONSUL_UI_ACCESS:
        raise ValueError(f"consul_ui_access must be one of {', '.join(CONSUL_UI_ACCESS)}, "
                         f"got {show(settings.consul_ui_access)}")
    if (settings.consul_ui_user is None) != (settings.consul_ui_password is None):
        raise ValueError("consul_ui_user and consul_ui_password must be set together")
    if settings.consul_ui_user is None:
        if settings.consul_ui_access == "full":
            raise ValueError("consul_ui_access 'full' lets anyone write to Consul: it needs consul_ui_user and "
                             "consul_ui_password")
        return
    _match(STATS_USER_RE, settings.consul_ui_user, "consul_ui_user (no whitespace, quotes, '#', ':' or '\\', max 64)")
    _match(STATS_PASSWORD_RE, settings.consul_ui_password,
           "consul_ui_password (no whitespace, quotes, '#' or '\\', max 128)")


def _check_server(backend: str, server: Any, server_options: list[RoutingOption]) -> None:
    _mapping(server, lambda: f"server entry of backend {show(backend)}")
    _match(SERVER_NAME_RE, server.get("name"), lambda: f"server name in backend {show(backend)}")
    if not valid_address(server.get("address")):
        raise ValueError(f"backend {show(backend)}: invalid server address {show(server.get('address'))}")
    _int(server.get("port"), 1, MAX_PORT, lambda: f"port of server {show(server.get('name'))}")
    for option in server_options:
        if option.name in server:
            _option_value(option, server[option.name], lambda: f"server {show(server.get('name'))}")


def _option_value(option: RoutingOption, value: Any, owner: _What) -> None:
    if not option.value.valid(value):
        raise ValueError(f"{_text(owner)}: {option.requirement()}, got {show(value)}")


def _check_options(backend: str, options: Any) -> None:
    _mapping(options, f"options of backend {show(backend)}")
    unknown = set(options) - {option.name for option in options_of("backend")}
    if unknown:
        raise ValueError(f"backend {show(backend)}: unknown options {show(sorted(unknown))}")
    for key, value in options.items():
        _option_value(ROUTING_OPTIONS[key], value, f"backend {show(backend)}")


def _check_table(table: Any, only: Collection[str] | None) -> list[str]:
    """Check the table's hosts and its backends (``only`` those named, if given); the backends' names."""
    server_options = options_of("server")
    _mapping(table, "routing table")
    _mapping(table.get("backends"), "routing table 'backends'")
    _mapping(table.get("hosts"), "routing table 'hosts'")
    if only is not None and not set(only) <= table["backends"].keys():
        unknown = ", ".join(show(name) for name in sorted(set(only) - table["backends"].keys()))
        raise ValueError(f"backends not in the routing table: {unknown}")
    chosen = list(table["backends"]) if only is None else [name for name in table["backends"] if name in only]
    for name in chosen:
        backend = table["backends"][name]
        _match(BACKEND_NAME_RE, name, "backend name")
        if name in RESERVED_PROXY_NAMES or name.startswith(SPARE_BACKEND_PREFIX):
            raise ValueError(f"backend name {show(name)} is reserved")
        _mapping(backend, f"backend {show(name)}")
        if not _is_list(backend.get("servers")):
            raise ValueError(f"backend {show(name)} must have a 'servers' list")
        _check_options(name, backend.get("options", {}))
        names = [server.get("name") if isinstance(server, Mapping) else None for server in backend["servers"]]
        if len(set(names)) != len(names):
            raise ValueError(f"backend {show(name)}: duplicate server names")
        for server in backend["servers"]:
            _check_server(name, server, server_options)
    for host, target in table["hosts"].items():
        if not is_host_fragment(host) or host != host.lower():
            raise ValueError(f"invalid host {show(host)}")
        if not isinstance(target, str) or target not in table["backends"]:
            raise ValueError(f"host {show(host)} routes to unknown backend {show(target)}")
    return chosen


def _section(header: str, lines: list[str]) -> list[str]:
    return [header] + [_INDENT + line for line in lines] + [""]


def _global(settings: HaproxySettings) -> list[str]:
    lines = [
        # Master-worker mode comes from the command line (-W -S), so this file works for both.
        "default-path config",
        f"hard-stop-after {settings.hard_stop_after}",
        f"mworker-max-reloads {settings.max_reloads:d}",
        f"stats socket {settings.runtime_socket} mode 600 level admin expose-fd listeners",
        f"maxconn {settings.maxconn:d}",
    ]
    if settings.log_stdout:
        lines.append("log stdout format raw local0")
    return _section("global", lines)


def _defaults(settings: HaproxySettings) -> list[str]:
    lines = ["mode http"]
    if settings.log_stdout:
        lines += ["log global", log_format_line(settings.log_format), "option dontlognull"]
    lines += [
        f"timeout connect {settings.timeout_connect}",
        # With 'timeout check' set, a check's connect waits min(timeout connect, inter) instead
        # of inter (see check_arguments); checks are TCP connects, so nothing is read after it.
        f"timeout check {settings.timeout_connect}",
        f"timeout client {settings.timeout_client}",
        f"timeout server {settings.timeout_server}",
        f"timeout tunnel {settings.timeout_tunnel}",
        f"timeout http-request {settings.timeout_http_request}",
        f"timeout http-keep-alive {settings.timeout_http_keep_alive}",
    ]
    if settings.retries:
        # Only failures where the server cannot have processed the request are retried.
        lines += [f"retries {settings.retries:d}", "option redispatch 1", "retry-on conn-failure empty-response"]
    if settings.idle_close_on_response:
        lines.append("option idle-close-on-response")
    return _section("defaults", lines)


def _frontend(settings: HaproxySettings, table: Mapping[str, Any]) -> list[str]:
    lines = [
        f"bind :{settings.http_port:d}",
        f"maxconn {settings.http_maxconn:d}",
        # Every Host form (port, case, one trailing dot) becomes the one the map holds, once.
        f"http-request set-var({HOST_VARIABLE}) {HOST_EXPRESSION}",
    ]
    lines += forwarding_rules(check_networks(settings.trusted_networks, "trusted_networks"))
    lines += consul_ui_rules(consul_ui_hosts(table, settings.consul_ui_service), settings.consul_ui_access,
                             settings.consul_ui_user is not None)
    lines += [
        # The map is looked up in an http-request rule, not in use_backend: HAProxy 2.6 opens
        # use_backend's map only after parsing, outside 'default-path config', so a relative map
        # path would not resolve.
        f"http-request set-var(txn.backend) var({HOST_VARIABLE}),map({settings.map_file})",
        # An empty response may come from a server that processed the request: replay only
        # the methods that are safe to repeat.
        "http-request disable-l7-retry if !METH_GET !METH_HEAD !METH_OPTIONS",
        "use_backend %[var(txn.backend)]",
        f"default_backend {NO_ROUTE_BACKEND}",
    ]
    return _section("frontend http", lines)


def _no_route() -> list[str]:
    return _section(
        f"backend {NO_ROUTE_BACKEND}",
        [
            'http-request return status 503 content-type text/plain string "no route for this host"',
        ],
    )


def _stats(settings: HaproxySettings) -> list[str]:
    # Read-only on purpose: no 'stats admin', so nobody can disable servers through it.
    lines = [f"bind :{settings.stats_port:d}", f"maxconn {settings.stats_maxconn:d}", "stats enable", "stats uri /",
             "stats refresh 5s", "stats show-legends"]
    if settings.stats_user is not None:
        lines.append(f"stats auth {settings.stats_user}:{settings.stats_password}")
    return _section("listen stats", lines)


# Milliseconds per unit of an HAProxy duration (DURATION_RE); a bare number is milliseconds.
_DURATION_MS = {"us": 0.001, "ms": 1.0, "": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}


def duration_ms(value: str) -> float:
    """Milliseconds in an HAProxy duration that DURATION_RE accepts (``2s``, ``500ms``, ``100``)."""
    digits = value.rstrip("usmhd")
    return int(digits) * _DURATION_MS[value[len(digits):]]


def check_arguments(settings: HaproxySettings) -> str:
    """HAProxy's own check of every server (docs/RULES.md §6), and how soon its idle connections close.

    A dead server is DOWN at most ``inter * fall + timeout connect`` after it died. HAProxy
    starts a check ``inter`` after the previous one ended (``fastinter`` while the server is
    going down), and a check of a host that drops SYNs ends when its connect times out:
    ``min(timeout connect, inter)`` since the defaults set ``timeout check``. ``fastinter`` is
    ``inter`` less that wait, so the failing checks start one ``inter`` apart. Without both, the
    wait was ``inter`` and DOWN came up to ``2 * inter * fall`` late (8 s instead of 5 s by
    default, measured on the fleet lab, tests/fleet/test_site_faults.py).

    A removed server can only be deleted once it has no connection at all, idle ones in the
    reuse pool included, and HAProxy closes half of those every ``pool-purge-delay`` (5s by default).
    """
    inter = duration_ms(settings.check_interval)
    wait = min(duration_ms(settings.timeout_connect), inter)
    fastinter = f" fastinter {round(inter - wait):d}ms" if round(inter - wait) >= 1 else ""
    return (f"check inter {settings.check_interval}{fastinter} fall {settings.check_fall:d}"
            f" rise {settings.check_rise:d} pool-purge-delay {settings.pool_purge_delay}")


def server_arguments(
    server: Mapping[str, Any], options: Mapping[str, Any], runtime_settings: HaproxySettings | None = None
) -> str:
    """What follows ``server <name>`` for one server: on a config line (the backend's
    default-server supplies the check timing) or, given ``runtime_settings``, in a Runtime API
    ``add server``, which does not inherit default-server and so gets every keyword spelled out."""
    settings = runtime_settings
    words = [host_port(server["address"], server["port"])]
    words += [check_arguments(settings)] if settings is not None else ["check"]
    for option in ROUTING_OPTIONS.values():
        value = (options if option.scope == "backend" else server).get(option.name)
        if value is not None:
            words += option.haproxy.server_words(value, server["name"])
    if settings is None and not is_ip_literal(server["address"]):
        # A name that does not resolve yet must not stop HAProxy from starting.
        words += ["init-addr", "libc,none"]
    return " ".join(words)


def _server_line(server: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    return f"server {server['name']} {server_arguments(server, options)}"


def _backend(
    name: str, backend: Mapping[str, Any], settings: HaproxySettings, backend_options: list[RoutingOption]
) -> list[str]:
    options = backend.get("options", {})
    lines = []
    for option in backend_options:
        value = options.get(option.name, option.default)
        if value is not None:
            lines += option.haproxy.backend_lines(value)
    lines.append(f"default-server {check_arguments(settings)}")
    lines += [_server_line(server, options) for server in sorted(backend["servers"], key=lambda item: item["name"])]
    return _section(f"backend {name}", lines)


# HAProxy needs two descriptors per connection plus some for listeners, checks and sockets
# (it asked for 8223 at maxconn 4096), and refuses to start when it cannot raise its limit.
FDS_PER_CONNECTION = 2
FDS_RESERVED = 256


def fit_to_fd_limit(settings: HaproxySettings, fd_limit: int) -> HaproxySettings:
    """``settings`` with every maxconn lowered so that HAProxy fits in ``fd_limit`` descriptors
    (the process's hard RLIMIT_NOFILE); unchanged when they fit already."""
    most = max(1, (fd_limit - FDS_RESERVED) // FDS_PER_CONNECTION)
    if settings.maxconn <= most:
        return settings
    return dataclasses.replace(settings, maxconn=most, http_maxconn=min(settings.http_maxconn, most),
                               stats_maxconn=min(settings.stats_maxconn, most))


def spare_backend_names(settings: HaproxySettings) -> list[str]:
    """The spare backends a config rendered with these settings declares."""
    return [f"{SPARE_BACKEND_PREFIX}{index:04d}" for index in range(settings.spare_backends)]


def render_map(table: Mapping[str, Any]) -> str:
    """The host -> backend map file, one sorted ``host backend`` line per host."""
    return "".join(f"{host} {table['hosts'][host]}\n" for host in sorted(table["hosts"]))


def render_haproxy_config(
    table: Mapping[str, Any], settings: HaproxySettings | None = None, backends: Collection[str] | None = None
) -> dict[str, str]:
    """Render ``{"haproxy.cfg": text, "hosts.map": text}`` from a routing table.

    The ``hosts.map`` text belongs at ``settings.map_file`` (next to haproxy.cfg by default).
    ``backends``, when given, limits the backend sections to those names, all of the table (for
    checking a part; everything else is rendered from the whole table). Pure and deterministic;
    raises ValueError if any value it renders, from the table or the settings, is unsafe, or a
    name in ``backends`` is not one of the table's.
    """
    settings = settings or HaproxySettings()
    _check_settings(settings)
    if isinstance(backends, str):
        raise ValueError(f"backends must be a collection of backend names, not the text {show(backends)}")
    names = sorted(_check_table(table, None if backends is None else set(backends)))
    lines = ["# Generated by autoproxy.stack; local edits are overwritten.", ""]
    lines += _global(settings) + _defaults(settings) + _frontend(settings, table) + _no_route() + _stats(settings)
    if settings.consul_ui_user is not None:
        lines += consul_ui_userlist(settings.consul_ui_user, settings.consul_ui_password or "")
    backend_options = options_of("backend")
    for name in names:
        lines += _backend(name, table["backends"][name], settings, backend_options)
    for name in spare_backend_names(settings):
        lines += _backend(name, {"servers": []}, settings, backend_options)
    return {"haproxy.cfg": "\n".join(lines), "hosts.map": render_map(table)}
