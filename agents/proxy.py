# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent: Consul catalog -> routing table -> HAProxy, with as few reloads as HAProxy allows.

It watches Consul with blocking queries, builds the routing table after each change and hands
it to its proxy backend (_haproxy_backend: HAProxy, run by the agent in master-worker mode,
changed through its Runtime API where it can and reloaded where it must). A catalog that lost
most of its services is held back until confirmed (see _proxy_guard).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.autoproxy.stack.agents._common import Backoff, env_default
from ansible_collections.autoproxy.stack.agents._haproxy_backend import HaproxyBackend
from ansible_collections.autoproxy.stack.agents._proxy_backend import ProxyBackend
from ansible_collections.autoproxy.stack.agents._proxy_guard import DropGuard
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_catalog import fetch_instances
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    fit_to_fd_limit,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_frontend import (
    ACCESS_LOG_FORMATS,
    CONSUL_UI_ACCESS,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._local_weights import LocalWeights, local_weights
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import RoutingTableBuilder
from ansible_collections.autoproxy.stack.plugins.module_utils._text import split_escaped

log = logging.getLogger("autoproxy.proxy")
SETTLE = 0.01


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="autoproxy-agent proxy", description=__doc__)
    add = parser.add_argument
    add("--consul", default=env_default("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"), help="Consul HTTP API URL")
    add("--consul-token", default=os.environ.get("CONSUL_HTTP_TOKEN"))
    add("--domains", default=env_default("HAPROXY_DOMAIN", "127.0.0.1.nip.io:test"),
        help="':'-separated domains every host also answers under (the seed's HAPROXY_DOMAIN)")
    add("--http-port", type=int, default=80)
    add("--stats-port", type=int, default=1936)
    add("--stats-user", default=os.environ.get("AUTOPROXY_STATS_USER"))
    add("--stats-password", default=os.environ.get("AUTOPROXY_STATS_PASSWORD"))
    add("--config-dir", default="/etc/haproxy/autoproxy")
    add("--master-socket", default="/run/haproxy/master.sock")
    add("--runtime-socket", default="/run/haproxy/admin.sock")
    add("--haproxy", default="haproxy", help="HAProxy binary")
    add("--debounce", type=float, default=0.2, help="seconds to coalesce further changes after one is applied")
    add("--check-interval", default="2s", help="interval of HAProxy's own server checks")
    add("--check-fall", type=int, default=2)
    add("--check-rise", type=int, default=1)
    add("--spare-backends", type=int, default=20,
        help="backends declared in advance so new services need no reload; doubled (up to 32 times) "
             "by the reload that follows when new services use them all")
    add("--rename-after", type=float, default=2.0,
        help="seconds of quiet after which one reload gives backends that run on spare slots their own names "
             "(stats page, logs); 0 never reloads for that")
    add("--hard-stop-after", default="30s", help="longest life of an old worker after a reload")
    add("--drain-timeout", type=float, default=30.0,
        help="seconds a removed server may keep its connections before they are shut down")
    add("--confirm-after", type=float, default=3.0,
        help="seconds before a second read may confirm that more than half of the services are gone")
    add("--fault-hold", type=float, default=30.0,
        help="seconds after a Consul fault during which such a drop is never applied")
    add("--access-log", action=argparse.BooleanOptionalAction, default=True,
        help="log every request to stdout (docker logs), one line each")
    add("--access-log-format", choices=sorted(ACCESS_LOG_FORMATS), default="text",
        help="text (HAProxy's httplog fields plus the host) or json (one object per line)")
    for name, default in (("connect", "1s"), ("client", "30s"), ("server", "30s"), ("tunnel", "1h"),
                          ("http-request", "10s"), ("http-keep-alive", "10s")):
        add(f"--timeout-{name}", default=default, help=f"HAProxy's timeout {name}")
    add("--maxconn", type=int, default=4096, help="connections HAProxy holds at once (global maxconn)")
    add("--http-maxconn", type=int, default=4000, help="connections the HTTP frontend takes at once")
    add("--stats-maxconn", type=int, default=64, help="connections the stats page takes at once")
    add("--trusted-networks", default=os.environ.get("AUTOPROXY_TRUSTED_NETWORKS", ""),
        help="','-separated client networks (other proxies) whose X-Forwarded-* headers are kept")
    add("--consul-ui-service", default="consul-admin_infra",
        help="the Consul UI's service; its hosts are guarded (empty: none)")
    add("--consul-ui-access", choices=CONSUL_UI_ACCESS, default="read_only",
        help="read_only: GET/HEAD to read endpoints only; full: everything, behind basic auth")
    add("--consul-ui-user", default=os.environ.get("AUTOPROXY_CONSUL_UI_USER"))
    add("--consul-ui-password", default=os.environ.get("AUTOPROXY_CONSUL_UI_PASSWORD"))
    add("--local-address", action="append", dest="local_addresses", help="an address of this host as its containers' "
        "registrations carry it (its fleet IP in host mode); repeatable or ','-separated (default: "
        "$AUTOPROXY_LOCAL_ADDRESSES)")
    add("--local-weight", type=int, default=0,
        help="servers at a local address get their weight times this, at most 256 (docs/RULES.md §18); 0: off")
    add("--wait", type=int, default=55, help="blocking query wait, seconds")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> HaproxySettings:
    return HaproxySettings(
        http_port=args.http_port,
        stats_port=args.stats_port,
        stats_user=args.stats_user or None,
        stats_password=args.stats_password or None,
        check_interval=args.check_interval,
        check_fall=args.check_fall,
        check_rise=args.check_rise,
        hard_stop_after=args.hard_stop_after,
        runtime_socket=args.runtime_socket,
        spare_backends=args.spare_backends,
        log_stdout=args.access_log,
        log_format=args.access_log_format,
        timeout_connect=args.timeout_connect,
        timeout_client=args.timeout_client,
        timeout_server=args.timeout_server,
        timeout_tunnel=args.timeout_tunnel,
        timeout_http_request=args.timeout_http_request,
        timeout_http_keep_alive=args.timeout_http_keep_alive,
        maxconn=args.maxconn,
        http_maxconn=args.http_maxconn,
        stats_maxconn=args.stats_maxconn,
        trusted_networks=tuple(split_escaped(args.trusted_networks or "", ",", strip=True)),
        consul_ui_service=args.consul_ui_service,
        consul_ui_access=args.consul_ui_access,
        consul_ui_user=args.consul_ui_user or None,
        consul_ui_password=args.consul_ui_password or None,
    )


def local_weights_from_args(args: argparse.Namespace) -> LocalWeights:
    """The local-first weights the options ask for; ValueError naming a bad address or weight."""
    given = args.local_addresses
    if given is None:
        given = [os.environ.get("AUTOPROXY_LOCAL_ADDRESSES", "")]
    addresses = [address for value in given for address in split_escaped(value, ",", strip=True)]
    return LocalWeights.checked(addresses, args.local_weight)


def fitted(settings: HaproxySettings) -> HaproxySettings:
    """HAProxy refuses to start when maxconn needs more file descriptors than it may open."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return settings
    fit = fit_to_fd_limit(settings, hard)
    if fit is not settings:
        log.warning("maxconn %d needs more file descriptors than this container may open (%d): using maxconn %d; "
                    "raise the limit (docker run --ulimit nofile=...) or lower --maxconn", settings.maxconn, hard,
                    fit.maxconn)
    return fit


class ProxyAgent:
    """Consul -> routing table -> a ProxyBackend (HAProxy), one change at a time."""

    def __init__(self, args: argparse.Namespace, backend: ProxyBackend | None = None) -> None:
        self.args = args
        self.consul = ConsulClient(args.consul, token=args.consul_token)
        self.domains = split_escaped(args.domains or "", ":", strip=True)
        self.backend: ProxyBackend = backend or HaproxyBackend(args, fitted(settings_from_args(args)))
        self.builder = RoutingTableBuilder()
        self.local = local_weights_from_args(args)
        self.guard = DropGuard(args.confirm_after, args.fault_hold)
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.last_fault: float | None = None
        self.recheck_at: float | None = None
        self.health_snapshot: Any = None  # the health watch's last (checks, index), read by apply()
        self.health_meaning: Any = None  # what in that answer can change a route, see keep_health()
        self.known: dict[Any, Any] = {}  # services fetch_instances() read again once, see there

    def start(self) -> None:
        try:
            table = self.build(fetch_instances(self.consul)[0])
        except ConsulError as exc:
            log.warning("Consul not reachable yet, starting with no routes: %s", exc)
            self.last_fault = time.monotonic()
            table = self.build([])
        self.backend.start(table)

    def build(self, instances: list[dict[str, Any]]) -> dict[str, Any]:
        table = self.builder.build(instances, self.domains)
        for warning in table.get("warnings", []):
            log.warning("%s", warning)
        return self.backend.screen(local_weights(table, self.local))

    # ---- applying
    def apply(self) -> bool:
        instances, _unused = fetch_instances(self.consul, checks=self.health_snapshot, known=self.known)
        wanted = self.build(instances)
        applied = self.backend.table
        table, held, recheck = self.guard.filter(applied, wanted, time.monotonic(), self.last_fault)
        self.recheck_at = time.monotonic() + recheck if recheck is not None else None
        if held and applied is not None:
            log.warning("Consul lost %d of %d live services in one step; keeping them until a later read agrees: %s",
                        len(held), len(applied["backends"]), ", ".join(sorted(held)[:10]))
        return self.backend.update(table)

    # ---- Consul watches
    def watch(self, name: str, query: Callable[..., Any], keep: Callable[[Any], bool] | None = None) -> None:
        """Set ``changed`` whenever a blocking query's index moves; ``keep`` gets each answer, and
        None when a query failed (what it held may be gone with the Consul that answered it)."""
        index = None
        backoff = Backoff(first=0.2, cap=2.0)
        while not self.stopping.is_set():
            try:
                answer = query(index=index, wait=self.args.wait)
            except ConsulError as exc:
                log.warning("watch %s: %s; retrying in %.1fs", name, exc, backoff.peek())
                self.last_fault = time.monotonic()
                index = None
                if keep:
                    keep(None)
                backoff.sleep(self.stopping)
                continue
            backoff.reset()
            new_index = answer[1]
            meaningful = keep(answer) if keep else True
            if new_index != index and meaningful:
                self.changed.set()
            if index is not None and new_index is not None and new_index < index:
                # An index that goes backwards means Consul restarted or lost its state.
                log.warning("watch %s: Consul's index went back from %s to %s", name, index, new_index)
                self.last_fault = time.monotonic()
                new_index = None
            index = new_index

    def keep_health(self, answer: Any) -> bool:
        """Keep the health watch's answer; True when it can change a route.

        A check's output or notes may change on every run of some checks; only which checks
        exist and their status decide routes, so an answer that changes nothing else costs no
        catalog read and no build.
        """
        self.health_snapshot = answer
        meaning = None if answer is None else _health_meaning(answer[0])
        changed = meaning is None or meaning != self.health_meaning
        self.health_meaning = meaning
        return changed

    def tick(self) -> None:
        """Work that is due without a Consul change: held drops to re-read, the backend's own."""
        if self.recheck_at is not None and time.monotonic() >= self.recheck_at:
            self.recheck_at = None
            self.changed.set()
        self.backend.tick(busy=self.changed.is_set())

    def run(self) -> int:
        self.start()
        watches = (("catalog", self.consul.catalog_services, None),
                   ("health", self.consul.health_state, self.keep_health))
        for name, query, keep in watches:
            threading.Thread(target=self.watch, args=(name, query, keep), name="watch-" + name, daemon=True).start()
        backoff = Backoff(first=0.2, cap=2.0)
        retried: tuple[type[Exception], ...] = (ConsulError, *self.backend.errors)
        while not self.stopping.is_set():
            status = self.backend.exit_status()
            if status is not None:
                log.error("HAProxy exited with status %s", status)
                return 1
            self.tick()
            if not self.changed.wait(timeout=0.1):
                continue
            # The catalog and the health watch answer one registration within milliseconds of
            # each other: wait that long, so both cost one catalog read and one update.
            self.stopping.wait(SETTLE)
            self.changed.clear()
            try:
                self.apply()
                backoff.reset()
            except retried as exc:
                log.warning("update failed, keeping the running configuration: %s", exc)
                if isinstance(exc, ConsulError):
                    self.last_fault = time.monotonic()
                self.changed.set()
                backoff.sleep(self.stopping)
                continue
            # Leading-edge debounce: the first change went out at once, a burst after it is
            # coalesced into one more apply.
            self.stopping.wait(self.args.debounce)
        return 0

    def stop(self, *_signal: Any) -> None:
        self.stopping.set()
        self.changed.set()


def _health_meaning(checks: Any) -> frozenset[tuple[Any, ...]]:
    """What of ``/v1/health/state/any`` decides routes: each check's node, service and status."""
    return frozenset((check.get("Node"), check.get("ServiceID"), check.get("CheckID"), check.get("Status"))
                     for check in checks or () if isinstance(check, dict))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        render_haproxy_config({"backends": {}, "hosts": {}}, settings_from_args(args))
        local = local_weights_from_args(args)
    except ValueError as exc:
        log.error("invalid proxy settings: %s", exc)
        return 2
    if local.active:
        log.info("local-first weights: servers at %s get their weight times %d", ", ".join(sorted(local.addresses)),
                 local.weight)
    agent = ProxyAgent(args)
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    try:
        return agent.run()
    finally:
        # Also when run() failed: never leave the HAProxy it started behind.
        agent.stop()
        agent.backend.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
