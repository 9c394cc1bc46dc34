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
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.autoproxy.stack.agents._common import Backoff, Pacer
from ansible_collections.autoproxy.stack.agents._haproxy_backend import HaproxyBackend
from ansible_collections.autoproxy.stack.agents._proxy_backend import ProxyBackend
from ansible_collections.autoproxy.stack.agents._proxy_guard import DropGuard
from ansible_collections.autoproxy.stack.plugins.module_utils._agent_settings import build_parser, consul_client
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_catalog import (
    CatalogListing,
    fetch_instances,
    read_instances,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    fit_to_fd_limit,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._local_weights import LocalWeights, local_weights
from ansible_collections.autoproxy.stack.plugins.module_utils._proxy_settings import (
    PROXY_SETTINGS,
    haproxy_settings,
    settings_error,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import RoutingTableBuilder
from ansible_collections.autoproxy.stack.plugins.module_utils._text import split_escaped

log = logging.getLogger("autoproxy.proxy")
SETTLE = 0.01


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The agent's options from its command line (and environment), as PROXY_SETTINGS declares them."""
    return build_parser("autoproxy-agent proxy", __doc__, PROXY_SETTINGS).parse_args(argv)


def local_weights_from_args(args: argparse.Namespace) -> LocalWeights:
    """The local-first weights the options ask for; ValueError naming a bad address or weight.

    ``args.local_addresses`` is a list of ','-separated texts (the option given any number of times,
    else $AUTOPROXY_LOCAL_ADDRESSES as one text, else None).
    """
    given = args.local_addresses or []
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
        self.consul = consul_client(args)
        self.domains = split_escaped(args.domains or "", ":", strip=True)
        self.backend: ProxyBackend = backend or HaproxyBackend(args, fitted(haproxy_settings(args)))
        self.builder = RoutingTableBuilder()
        self.local = local_weights_from_args(args)
        self.guard = DropGuard(args.confirm_after, args.fault_hold)
        self.pacer = Pacer(args.debounce)
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.last_fault: float | None = None
        self.recheck_at: float | None = None
        # The health watch's last (checks, index) and which checks it holds (see _check_ids), set
        # together as one value since apply() reads them from another thread.
        self.health_read: tuple[Any, frozenset[tuple[Any, ...]] | None] = (None, None)
        self.health_meaning: Any = None  # what in that answer can change a route, see keep_health()
        self.known: dict[Any, Any] = {}  # services fetch_instances() read again once, see there
        self.catalog_index: int | None = None  # the catalog watch's last index, None after a failure
        self.nodes_read: Any = None  # the nodes watch's last answer, (nodes, index); None before one or after a failure
        # The last catalog read and what it held for: (listing, (catalog watch index, checks, last fault)).
        self.listing: tuple[CatalogListing, tuple[Any, ...]] | None = None
        self.applied_from: list[dict[str, Any]] | None = None  # instances of the last update, nothing held

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
        """Read the catalog and update the proxy; False when nothing had to change.

        Only what a change needs is done: while the catalog watch saw no change, the same checks
        exist (only statuses moved), Consul had no fault and the last update held nothing back,
        the services read last time are taken again (see read_instances()); instances equal to
        those of the last update (nothing held back then) are not built again.
        """
        snapshot, checks = self.health_read
        # Read before the catalog, so a change while it is read makes the next apply read it again.
        basis = (self.catalog_index, checks, self.last_fault)
        previous = None
        # A drop held back is confirmed only by a new read of everything.
        if self.listing is not None and None not in basis[:2] and self.listing[1] == basis \
                and self.applied_from is not None:
            previous = self.listing[0]
        instances, listing = read_instances(self.consul, checks=snapshot, known=self.known, previous=previous,
                                            nodes=self.nodes_read)
        self.listing = (listing, basis)
        if instances == self.applied_from and self.recheck_at is None:
            return False
        self.applied_from = None
        wanted = self.build(instances)
        applied = self.backend.table
        table, held, recheck = self.guard.filter(applied, wanted, time.monotonic(), self.last_fault)
        self.recheck_at = time.monotonic() + recheck if recheck is not None else None
        if held and applied is not None:
            log.warning("Consul lost %d of %d live services in one step; keeping them until a later read agrees: %s",
                        len(held), len(applied["backends"]), ", ".join(sorted(held)[:10]))
        changed = self.backend.update(table)
        if not held:
            self.applied_from = instances
        return changed

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

    @property
    def health_snapshot(self) -> Any:
        """The health watch's last answer, ``(checks, index)``; None before one or after a failure."""
        return self.health_read[0]

    def keep_catalog(self, answer: Any) -> bool:
        """Keep the catalog watch's index (None after a failure); every new index can change a route."""
        self.catalog_index = None if answer is None else answer[1]
        return True

    def keep_nodes(self, answer: Any) -> bool:
        """Keep the nodes watch's answer for read_instances() (None after a failure: it reads them
        itself); a node that comes, goes or moves can change a route."""
        self.nodes_read = answer
        return True

    def keep_health(self, answer: Any) -> bool:
        """Keep the health watch's answer; True when it can change a route.

        A check's output or notes may change on every run of some checks; only which checks
        exist and their status decide routes, so an answer that changes nothing else costs no
        catalog read and no build.
        """
        meaning = None if answer is None else _health_meaning(answer[0])
        self.health_read = (answer, _check_ids(meaning))
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
        watches = (("catalog", self.consul.catalog_services_index, self.keep_catalog),
                   ("health", self.consul.health_state, self.keep_health),
                   ("nodes", self.consul.catalog_nodes, self.keep_nodes))
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
            # each other: wait that long, so both cost one catalog read and one update. While
            # changes keep coming, the pacer spaces updates out; what comes meanwhile joins the next.
            self.stopping.wait(max(SETTLE, self.pacer.delay(time.monotonic())))
            self.changed.clear()
            self.pacer.spend(time.monotonic())
            try:
                self.apply()
                backoff.reset()
            except retried as exc:
                log.warning("update failed, keeping the running configuration: %s", exc)
                if isinstance(exc, ConsulError):
                    self.last_fault = time.monotonic()
                self.changed.set()
                backoff.sleep(self.stopping)
        return 0

    def stop(self, *_signal: Any) -> None:
        self.stopping.set()
        self.changed.set()


def _health_meaning(checks: Any) -> frozenset[tuple[Any, ...]]:
    """What of ``/v1/health/state/any`` decides routes: each check's node, service and status."""
    return frozenset((check.get("Node"), check.get("ServiceID"), check.get("CheckID"), check.get("Status"))
                     for check in checks or () if isinstance(check, dict))


def _check_ids(meaning: frozenset[tuple[Any, ...]] | None) -> frozenset[tuple[Any, ...]] | None:
    """Which checks exist (node, service, check ID) in a _health_meaning(); None for None."""
    return None if meaning is None else frozenset(check[:3] for check in meaning)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        render_haproxy_config({"backends": {}, "hosts": {}}, haproxy_settings(args))
        local = local_weights_from_args(args)
    except ValueError as exc:
        log.error("invalid proxy settings: %s", settings_error(exc, args))
        return 2
    if local.active:
        log.info("local-first weights: servers at %s get their weight times %d", ", ".join(sorted(local.addresses)),
                 local.weight)
    if args.check_settings:
        log.info("the proxy settings are valid")
        return 0
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
