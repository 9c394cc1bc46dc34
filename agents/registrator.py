# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent: Docker events -> Consul service registrations.

Accepts gliderlabs/registrator's SERVICE_* environment variables and labels (plugins/module_utils/
_containers.py) and its flags. It subscribes to Docker events before it lists containers (no
start-up race), handles each container's events in order on that container's own queue, reconnects
the event stream forever, drains a container from Consul on the ``kill`` that ends it (before
``die``), mirrors Docker's HEALTHCHECK into a TTL check, probes a new service's check at a fast
pace so it is routed as soon as it answers, and reconciles Consul with Docker both ways at a fixed
period and whenever Consul comes back (a dev agent restarts empty). Only services carrying its owner
mark are ever removed, and an unchanged service is never re-registered (the digest in Meta says so).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import signal
import socket
import sys
import threading
import time

import docker

from ansible_collections.autoproxy.stack.agents._common import Backoff, env_default
from ansible_collections.autoproxy.stack.agents._registrator_claims import ServiceIdClaims
from ansible_collections.autoproxy.stack.agents._registrator_runtime import KeyedSerialExecutor, probe_once
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import (
    ConsulClient,
    ConsulError,
    agent_services_where,
    filter_string,
    register_service_checks,
    update_ttl_check,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._containers import (
    AgentOptions,
    container_name,
    container_services,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import (
    CONTAINER_META,
    DIGEST_META,
    HEALTH_CHECK_PREFIX,
    add_health_check,
    consul_status,
    deregister_on_exit,
    digests_match,
    docker_health_status,
    drains_on_kill,
    health_check_id,
    health_from_list_status,
    mark_passing,
    owned_services,
    plan_changes,
    probe_target,
    registrator_cleanup_ids,
    services_by_container,
    with_digest,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._service_id_ownership import (
    assign_service_ids,
    claim_order,
)

log = logging.getLogger("autoproxy.registrator")

FAILURES = (ConsulError, docker.errors.DockerException, OSError)
PARALLEL_CONTAINERS = 32  # container tasks running at once
CONTAINER_ACTIONS = ("start", "unpause", "pause", "die", "destroy", "kill", "health_status", "rename")
NETWORK_ACTIONS = ("connect", "disconnect")


# ------------------------------------------------------------------------------------------------
# options


def _flag(parser, long_name, registrator_name, **kwargs):
    """An option under our spelling and registrator's single-dash one."""
    names = [long_name] + ([registrator_name] if registrator_name else [])
    parser.add_argument(*names, **kwargs)


def _consul_url(uri):
    """registrator's registry URI (consul://host:port, consul-tls://host:port) or a plain URL."""
    for prefix, scheme in (("consul-tls://", "https://"), ("consul://", "http://")):
        if uri.startswith(prefix):
            return scheme + uri[len(prefix):]
    return uri


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="autoproxy-agent registrator", description=__doc__, allow_abbrev=False)
    parser.add_argument("registry_uri", nargs="?", help="registrator-style consul://host:port or consul-tls://...")
    parser.add_argument("--consul", default=env_default("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"),
                        help="Consul HTTP API URL (the registry_uri argument wins)")
    parser.add_argument("--consul-token", default=os.environ.get("CONSUL_HTTP_TOKEN"))
    parser.add_argument("--consul-cacert", default=env_default("CONSUL_CACERT", None), help="CA file for https")
    parser.add_argument("--consul-client-cert", default=env_default("CONSUL_CLIENT_CERT", None))
    parser.add_argument("--consul-client-key", default=env_default("CONSUL_CLIENT_KEY", None))
    _flag(parser, "--internal", "-internal", action="store_true",
          help="register the container's IP and exposed port (else host IP and published port)")
    _flag(parser, "--ip", "-ip", dest="host_ip", help="host IP to register for published ports")
    parser.add_argument("--network", help="network whose IP is registered (label autoproxy.network wins)")
    _flag(parser, "--explicit", "-explicit", action="store_true", help="only register containers with SERVICE_NAME")
    _flag(parser, "--use-ip-from-label", "-useIpFromLabel", dest="ip_from_label",
          help="take the service IP from this label")
    _flag(parser, "--tags", "-tags", default="", help="comma list of tags added to every service")
    parser.add_argument("--hostname", default=socket.gethostname(), help="host name used in service IDs")
    _flag(parser, "--deregister", "-deregister", choices=("always", "on-success"), default="always")
    _flag(parser, "--cleanup", "-cleanup", action="store_true",
          help="also remove this host's registrator-style IDs that no live container backs")
    _flag(parser, "--resync", "-resync", type=float, default=10.0,
          help="seconds between full reconciliations (0: only at start and after faults)")
    _flag(parser, "--retry-attempts", "-retry-attempts", type=int, default=-1,
          help="Consul attempts at start before exiting (-1: forever)")
    _flag(parser, "--retry-interval", "-retry-interval", type=int, default=2000,
          help="milliseconds between those attempts")
    _flag(parser, "--ttl", "-ttl", type=int, default=0, help="accepted for registrator compatibility; no effect")
    _flag(parser, "--ttl-refresh", "-ttl-refresh", type=int, default=0, help="as --ttl")
    parser.add_argument("--filter-label", help="only manage containers with this label (KEY or KEY=VALUE)")
    parser.add_argument("--no-script-checks", dest="script_checks", action="store_false",
                        help="refuse SERVICE_CHECK_SCRIPT (Consul would run a container-given command)")
    parser.add_argument("--health-ttl", default="24h", help="TTL of the check that mirrors Docker's HEALTHCHECK")
    parser.add_argument("--probe-interval", type=float, default=0.1,
                        help="seconds between fast probes of a new service's check (0: leave it to Consul)")
    parser.add_argument("--probe-timeout", type=float, default=60.0, help="seconds to keep probing a new service")
    parser.add_argument("--no-drain", dest="drain", action="store_false",
                        help="do not deregister on the kill that ends a container (wait for die)")
    parser.add_argument("--drain-grace", type=float, default=60.0,
                        help="seconds a drained container that still runs stays out of Consul")
    args = parser.parse_args(argv)
    if args.registry_uri:
        args.consul = _consul_url(args.registry_uri)
    if args.ttl or args.ttl_refresh:
        log.warning("-ttl/-ttl-refresh have no effect with Consul (as in registrator); use SERVICE_CHECK_TTL")
    return args


def _label_matches(labels, selector):
    if not selector:
        return True
    key, sep, value = selector.partition("=")
    return key in (labels or {}) and (not sep or labels[key] == value)


# ------------------------------------------------------------------------------------------------
# the agent


class RegistratorAgent:
    def __init__(self, args, docker_client=None):
        self.args = args
        self.docker = docker_client or docker.from_env(timeout=30)
        self.consul = ConsulClient(args.consul, token=args.consul_token, ca_path=args.consul_cacert,
                                   client_cert=args.consul_client_cert, client_key=args.consul_client_key)
        self.options = AgentOptions(
            hostname=args.hostname,
            mode="internal" if args.internal else "host",
            host_ip=args.host_ip,
            network=args.network,
            explicit=args.explicit,
            ip_from_label=args.ip_from_label,
            tags=args.tags,
            owner="registrator:" + args.hostname,
            script_checks=args.script_checks,
        )
        self.stopping = threading.Event()
        self.sync_wanted = threading.Event()
        self.executor = KeyedSerialExecutor(self._task_failed, max_parallel=PARALLEL_CONTAINERS)
        # One Consul read per container task at most, beside its Docker inspect (see reconcile).
        self.readers = concurrent.futures.ThreadPoolExecutor(PARALLEL_CONTAINERS, thread_name_prefix="consul-read")
        self.lock = threading.Lock()
        self.expected = set()          # service IDs this agent believes Consul holds
        self.draining = {}             # container name -> monotonic deadline
        self.desired_cache = {}        # container id -> (name, registrations) of a running container
        self.names_by_id = {}
        self.warned = {}               # container name -> last warnings logged
        self.health_sent = {}          # container name -> (consul status, monotonic time)
        self.refused = {}              # (service ID, digest) Consul refused -> monotonic time to retry
        self.probing = {}              # service ID -> (container name, digest) probed before it is registered
        self.claims = ServiceIdClaims()  # which running containers ask for which service ID

    # ---- Consul state this agent owns
    def owned_for(self, name):
        found = agent_services_where(self.consul, f"Meta.{CONTAINER_META} == {filter_string(name)}")
        return owned_services(found, self.options.owner)

    def _expect(self, service_id, present):
        with self.lock:
            (self.expected.add if present else self.expected.discard)(service_id)

    def missing_expected(self):
        with self.lock:
            expected = set(self.expected)
        if not expected:
            return set()
        return expected - set(owned_services(self.consul.agent_services(), self.options.owner))

    # ---- what a container should have
    def selected(self, inspect):
        return _label_matches((inspect.get("Config") or {}).get("Labels"), self.args.filter_label)

    def desired(self, inspect, have=None):
        """(registrations the container should have now, other containers whose service IDs moved).

        Claims the container's service IDs, so call it only for a running container that is not
        draining. ``have``: its services in Consul (service ID -> entry), None when not read.
        """
        name = container_name(inspect)
        if not self.selected(inspect):
            return [], self.claims.release(name)
        services, warnings = container_services(inspect, self.options)
        order = claim_order((inspect.get("State") or {}).get("StartedAt"), inspect.get("Id"))
        holders, moved = self.claims.claim(name, [service["ID"] for service in services], order,
                                           None if have is None else list(have))
        services, id_warnings = assign_service_ids(services, name, holders)
        warnings = list(warnings) + id_warnings
        if tuple(warnings) != self.warned.get(name):
            # Logged when they change, not on every periodic pass.
            for warning in warnings:
                log.warning("%s", warning)
            self.warned[name] = tuple(warnings)
        health = docker_health_status(inspect)
        if health is not None:
            services = [add_health_check(s, self.args.health_ttl, consul_status(health)) for s in services]
        return [with_digest(service) for service in services], moved

    def reconcile_moved(self, moved, reason):
        """Containers that gained or lost a service ID reconcile now, each on its own queue."""
        if not moved:
            return
        for container_id, (cached_name, _services) in list(self.desired_cache.items()):
            if cached_name in moved:
                self.desired_cache.pop(container_id, None)
        for other in sorted(moved):
            log.info("%s: reconciling %s, whose service IDs changed hands", reason, other)
            self.executor.submit(other, self.reconcile, other)

    def is_draining(self, name):
        deadline = self.draining.get(name)
        if deadline is None:
            return False
        if time.monotonic() < deadline:
            return True
        log.warning("container %s still runs %.0fs after the signal that drained it; routing it again",
                    name, self.args.drain_grace)
        self.draining.pop(name, None)
        return False

    def inspect(self, name):
        try:
            return self.docker.api.inspect_container(name)
        except docker.errors.NotFound:
            return None

    # ---- per-container tasks (always on the container's own queue)
    def reconcile(self, name, started=False, snapshot=None):
        """Make Consul hold what the container wants now.

        ``snapshot``: this container's services from a full pass, saving a Consul read per container
        when Consul came back empty; at worst it is older than a registration made since, which is
        then sent again unchanged.
        """
        if started:
            self.draining.pop(name, None)
        # Docker and Consul are read at once: under load each read takes tens of milliseconds.
        reading = self.readers.submit(self.owned_for, name) if snapshot is None else None
        inspect = self.inspect(name)
        state = (inspect or {}).get("State")
        running = bool(state and state.get("Running") and not state.get("Paused"))
        have = reading.result() if reading is not None else snapshot
        if running and not self.is_draining(name):
            desired, moved = self.desired(inspect, have)
        elif running:
            desired, moved = [], self.claims.release(name)
        elif have and not deregister_on_exit(self.args.deregister, state):
            log.info("container %s exited with %s: left registered (--deregister on-success)",
                     name, state.get("ExitCode"))
            return
        else:
            desired, moved = [], self.claims.release(name)
            self.draining.pop(name, None)
            self.health_sent.pop(name, None)
        to_register, to_deregister = plan_changes(desired, have)
        self._cancel_probes(name, keep={(r["ID"], r["Meta"][DIGEST_META]) for r in desired})
        for service_id in to_deregister:
            self.deregister(service_id, name)
        for registration in to_register:
            if not self._refused_recently(registration):
                self.register(registration, name, new=registration["ID"] not in have)
        if running and to_register:
            self.health_sent[name] = (self._health_of(desired), time.monotonic())
        # After this container's own changes, so none of them undoes what the others do now.
        self.reconcile_moved(moved, f"container {name}")

    def register(self, registration, name, new=False):
        """Register now, or once its check first passes when it is new and has a check to probe.

        Consul starts a new check as critical and runs it first after a random part of its interval,
        and keeps the status of an existing check when a service is registered again: so a new
        service is probed first and registered as passing, while a changed one keeps its state.
        """
        target = probe_target(registration) if new and self.args.probe_interval > 0 else None
        if target:
            key = (registration["ID"], registration["Meta"][DIGEST_META])
            if self.probing.get(key[0]) == (name, key[1]):
                return  # already being probed
            # One quick attempt first: an app that already answers (a restore, a restart) registers at once.
            if probe_once(dict(target, timeout=min(target["timeout"], 0.3))):
                registration = mark_passing(registration)
            else:
                self.probing[key[0]] = (name, key[1])
                threading.Thread(target=self.probe_until_passing, args=(name, registration, target),
                                 name=f"probe-{registration['ID']}"[:60], daemon=True).start()
                log.info("%s (%s) waits for its check to pass before it is registered", registration["ID"], name)
                return
        self._send(registration, name)

    def _send(self, registration, name):
        try:
            # Replacing checks drops one the previous definition had and this one has not.
            register_service_checks(self.consul, registration, True)
        except ConsulError as exc:
            if exc.status is None:
                raise  # Consul unreachable: the reconciliation retries
            # Consul answered no to this registration: bad input of this container, retried only later.
            log.warning("container %s: Consul refused service %s: %s", name, registration["ID"], exc)
            self.refused[(registration["ID"], registration["Meta"][DIGEST_META])] = time.monotonic() + 60
            return
        self._expect(registration["ID"], True)
        self.claims.registered(name, registration["ID"])
        status = (registration.get("Check") or next(iter(registration.get("Checks") or []), {})).get("Status")
        log.info("registered %s (%s %s:%s) for %s%s", registration["ID"], registration["Name"],
                 registration.get("Address"), registration.get("Port"), name,
                 f" as {status}" if status else "")

    def deregister(self, service_id, name, reason=""):
        self._expect(service_id, False)
        self.consul.deregister_service(service_id)
        log.info("deregistered %s (%s)%s", service_id, name, reason)

    def _cancel_probes(self, name, keep=()):
        for service_id, (owner, digest) in list(self.probing.items()):
            if owner == name and (service_id, digest) not in keep:
                self.probing.pop(service_id, None)

    def probe_until_passing(self, name, registration, target):
        deadline = time.monotonic() + self.args.probe_timeout
        mine = (name, registration["Meta"][DIGEST_META])
        passed = False
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if self.probing.get(registration["ID"]) != mine:
                return  # the container stopped or changed meanwhile
            if probe_once(target):
                passed = True
                break
            self.stopping.wait(self.args.probe_interval)
        if not passed:
            log.info("%s did not pass its check within %.0fs: registered, Consul's check decides",
                     registration["ID"], self.args.probe_timeout)
        self.executor.submit(name, self.register_probed, name, registration, passed)

    def register_probed(self, name, registration, passed):
        """Register after the probe, if the container still wants exactly what was probed."""
        if self.probing.get(registration["ID"]) != (name, registration["Meta"][DIGEST_META]):
            return
        self.probing.pop(registration["ID"], None)
        inspect = self.inspect(name)
        if inspect is None or not (inspect.get("State") or {}).get("Running") or self.is_draining(name):
            return
        desired, moved = self.desired(inspect)
        self.reconcile_moved(moved, f"container {name}")
        current = {s["ID"]: s for s in desired}.get(registration["ID"])
        if current is None or current["Meta"] != registration["Meta"]:
            return
        self._send(mark_passing(current) if passed else current, name)

    def drain(self, name, signal_value):
        inspect = self.inspect(name)
        stop_signal = ((inspect or {}).get("Config") or {}).get("StopSignal")
        if inspect is None or not drains_on_kill(signal_value, stop_signal):
            return
        self.draining[name] = time.monotonic() + self.args.drain_grace
        self._cancel_probes(name)
        moved = self.claims.release(name)
        for service_id in sorted(self.owned_for(name)):
            self.deregister(service_id, name, f" before it stops (signal {signal_value})")
        self.reconcile_moved(moved, f"container {name} drained")

    def update_health(self, name):
        inspect = self.inspect(name)
        health = docker_health_status(inspect) if inspect else None
        if health is None:
            return
        status = consul_status(health)
        for service_id in sorted(self.owned_for(name)):
            update_ttl_check(self.consul, health_check_id(service_id), status, f"Docker health status: {health}")
        self.health_sent[name] = (status, time.monotonic())
        log.info("%s: Docker health %s -> Consul %s", name, health, status)

    def _refused_recently(self, registration):
        key = (registration["ID"], registration["Meta"][DIGEST_META])
        retry_at = self.refused.get(key)
        if retry_at is not None and time.monotonic() >= retry_at:
            self.refused.pop(key, None)
            return False
        return retry_at is not None

    @staticmethod
    def _health_of(registrations):
        for registration in registrations:
            for check in registration.get("Checks") or []:
                if check.get("CheckID", "").startswith(HEALTH_CHECK_PREFIX):
                    return check.get("Status")
        return None

    def _task_failed(self, key, exc):
        if isinstance(exc, FAILURES):
            log.warning("container %s: %s; will reconcile", key, exc)
        else:
            log.exception("container %s: unexpected failure; will reconcile", key, exc_info=exc)
        self.sync_wanted.set()

    # ---- Docker events
    def subscribe(self):
        return self.docker.api.events(decode=True, filters={"type": ["container", "network"]})

    def dispatch(self, event):
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        if event.get("Type") == "network":
            if action in NETWORK_ACTIONS:
                self.dispatch_network(attributes.get("container", ""))
            return
        if action not in CONTAINER_ACTIONS or not _label_matches(attributes, self.args.filter_label):
            return
        container_id = actor.get("ID") or event.get("id") or ""
        name = attributes.get("name") or self.names_by_id.get(container_id) or container_id[:12]
        self.names_by_id[container_id] = name
        if action == "kill":
            if self.args.drain:
                self.executor.submit(name, self.drain, name, attributes.get("signal"))
        elif action == "health_status":
            self.executor.submit(name, self.update_health, name)
        elif action == "rename":
            old_name = attributes.get("oldName", "").lstrip("/")
            self.desired_cache.pop(container_id, None)
            if old_name:
                self.executor.submit(old_name, self.reconcile, old_name)
            self.executor.submit(name, self.reconcile, name)
        else:
            if action in ("start", "die", "destroy"):
                self.desired_cache.pop(container_id, None)
            self.executor.submit(name, self.reconcile, name, action == "start")

    def dispatch_network(self, container_id):
        """A network (dis)connect can change a running container's address: reconcile it.

        Only containers this agent has seen are reconciled. Every container is connected to its
        networks before its start event, which registers it; inspecting unknown ones here would
        hold up the event stream by one Docker round trip per new container.
        """
        self.desired_cache.pop(container_id, None)
        name = self.names_by_id.get(container_id)
        if name is not None:
            self.executor.submit(name, self.reconcile, name)

    def pump_events(self, stream):
        backoff = Backoff(cap=2.0)
        while not self.stopping.is_set():
            try:
                for event in stream:
                    backoff.reset()
                    self.dispatch(event)
                log.warning("Docker event stream closed; reconnecting")
            except Exception as exc:  # noqa: BLE001 - any failure of the stream means: reconnect
                log.warning("Docker event stream failed: %s; reconnecting", exc)
            # A failed stream still holds its HTTP connection to the Docker engine.
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing a broken stream may fail too
                    log.debug("closing the old event stream failed", exc_info=True)
            backoff.sleep(self.stopping)
            try:
                stream = self.subscribe()
            except Exception as exc:  # noqa: BLE001
                log.warning("cannot subscribe to Docker events: %s", exc)
                continue
            # Subscribed again first; what happened while disconnected is found by a full pass.
            self.sync_wanted.set()

    # ---- full reconciliation
    def list_containers(self):
        filters = {"label": self.args.filter_label} if self.args.filter_label else None
        return self.docker.api.containers(all=True, filters=filters)

    def cached_desired(self, container, grouped):
        entry = self.desired_cache.get(container["Id"])
        if entry is None:
            inspect = self.inspect(container["Id"])
            if inspect is None:
                return None, []
            name = container_name(inspect)
            running = bool((inspect.get("State") or {}).get("Running"))
            services, moved = self.desired(inspect, grouped.get(name, {})) \
                if running and not self.is_draining(name) else ([], set())
            self.reconcile_moved(moved, "full pass")
            entry = (name, services)
            self.desired_cache[container["Id"]] = entry
        name, services = entry
        return name, [] if self.is_draining(name) else services

    def sync_pass(self):
        containers = self.list_containers()
        all_services = self.consul.agent_services()
        grouped = services_by_container(owned_services(all_services, self.options.owner))
        running = set()
        stale_reconcile = set()
        for container in containers:
            name = (container.get("Names") or ["/" + container["Id"][:12]])[0].lstrip("/")
            self.names_by_id[container["Id"]] = name
            if container.get("State") != "running":
                continue
            running.add(name)
            name, desired = self.cached_desired(container, grouped)
            if name is None:
                continue
            if not digests_match(desired, grouped.get(name, {})):
                stale_reconcile.add(name)
            elif self._health_is_stale(name, container):
                self.executor.submit(name, self.update_health, name)
        live = {c["Id"] for c in containers if c.get("State") == "running"}
        for container_id in list(self.desired_cache):
            if container_id not in live:
                self.desired_cache.pop(container_id, None)
        stale_reconcile.update(name for name in grouped if name not in running)
        for name in sorted(stale_reconcile):
            self.executor.submit(name, self.reconcile, name, False, grouped.get(name, {}))
        if self.args.cleanup:
            names = {(c.get("Names") or [""])[0].lstrip("/") for c in containers}
            for service_id in registrator_cleanup_ids(all_services, self.args.hostname, names, self.options.owner):
                self.consul.deregister_service(service_id)
                log.info("cleanup: deregistered %s (registrator-style ID, no live container)", service_id)

    def _health_is_stale(self, name, container):
        health = health_from_list_status(container.get("Status"))
        if health is None:
            return False
        sent = self.health_sent.get(name)
        # Refreshed well before the TTL runs out, and whenever Docker's status differs from what was sent.
        return sent is None or sent[0] != consul_status(health) or time.monotonic() - sent[1] > 600

    def sync_loop(self):
        backoff = Backoff(first=0.2, cap=2.0)
        period = self.args.resync if self.args.resync > 0 else None
        while not self.stopping.is_set():
            self.sync_wanted.wait(timeout=period)
            if self.stopping.is_set():
                return
            self.sync_wanted.clear()
            try:
                self.sync_pass()
                backoff.reset()
            except FAILURES as exc:
                log.warning("reconciliation failed: %s; retrying", exc)
                backoff.sleep(self.stopping)
                self.sync_wanted.set()

    # ---- Consul watch: notices a Consul that came back empty, or lost one of our services
    def watch_consul(self):
        index = None
        was_down = False
        backoff = Backoff(first=0.1, cap=1.0)
        while not self.stopping.is_set():
            try:
                _unused, new_index = self.consul.catalog_services(index=index, wait=30)
                missing = self.missing_expected() if index is not None and new_index != index else set()
            except ConsulError as exc:
                if not was_down:
                    log.warning("Consul unreachable: %s", exc)
                was_down = True
                index = None
                backoff.sleep(self.stopping)
                continue
            backoff.reset()
            if was_down or missing or (index and new_index and new_index < index):
                log.info("Consul %s: reconciling now", f"lost {len(missing)} of our services" if missing else "is back")
                self.sync_wanted.set()
                was_down = False
            index = new_index

    # ---- start and stop
    def wait_for_consul(self):
        attempt = 0
        while not self.stopping.is_set():
            try:
                if self.consul.leader():
                    return True
                problem = "no leader yet"
            except ConsulError as exc:
                problem = str(exc)
            attempt += 1
            if 0 <= self.args.retry_attempts < attempt:
                log.error("Consul at %s not ready after %d attempts: %s", self.args.consul, attempt, problem)
                return False
            log.info("waiting for Consul (%s)", problem)
            self.stopping.wait(self.args.retry_interval / 1000.0)
        return False

    def run(self):
        if not self.wait_for_consul():
            return 0 if self.stopping.is_set() else 1
        # Subscribe first, then list: a container that starts in between is in the stream.
        stream = self.subscribe()
        for target, name, args in ((self.pump_events, "docker-events", (stream,)),
                                   (self.sync_loop, "reconcile", ()), (self.watch_consul, "consul-watch", ())):
            threading.Thread(target=target, args=args, name=name, daemon=True).start()
        self.sync_wanted.set()
        log.info("registrator agent started: owner %s, Consul %s", self.options.owner, self.args.consul)
        self.stopping.wait()
        return 0

    def stop(self, *_signal):
        self.stopping.set()
        self.sync_wanted.set()
        # Reads not started yet are dropped: at exit nothing waits for a Consul that hangs.
        self.readers.shutdown(wait=False, cancel_futures=True)


def main(argv):
    agent = RegistratorAgent(parse_args(argv))
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
