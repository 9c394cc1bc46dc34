# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The tasks that decide about one container; they run only on that container's worker.

Each task reads Docker and Consul first, lets the pure rules (plugins/module_utils/_containers.py,
_registrations.py, _service_id_ownership.py) decide, then writes to Consul: I/O at the edges. The
event intake and the full pass only queue these tasks; a container's ``ContainerState`` is touched
by nothing else, and is dropped once the container is gone.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import docker

from ansible_collections.autoproxy.stack.agents._registrator_claims import ServiceIdClaims
from ansible_collections.autoproxy.stack.agents._registrator_options import label_matches
from ansible_collections.autoproxy.stack.agents._registrator_probes import ProbePool, probe_once
from ansible_collections.autoproxy.stack.agents._registrator_state import ContainerState, ExpectedServices
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError, filter_string
from ansible_collections.autoproxy.stack.plugins.module_utils._containers import (
    AgentOptions,
    container_name,
    container_services,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import (
    CONTAINER_META,
    DIGEST_META,
    DRAINED,
    HEALTH_CHECK_PREFIX,
    KEEP,
    REMOVE,
    add_health_check,
    consul_status,
    container_phase,
    digests_match,
    docker_health_status,
    drains_on_kill,
    health_check_id,
    health_from_list_status,
    mark_passing,
    owned_services,
    plan_changes,
    probe_target,
    with_digest,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._service_id_ownership import (
    assign_service_ids,
    claim_order,
)

log = logging.getLogger("autoproxy.registrator")

Services = Mapping[str, Mapping[str, Any]]  # service ID -> entry of /v1/agent/services
HEALTH_REFRESH_SECONDS = 600  # the HEALTHCHECK mirror is refreshed well before its TTL runs out
REFUSED_RETRY_SECONDS = 60
QUICK_PROBE_SECONDS = 0.3


class ContainerTasks:
    """Reconcile, drain, health and probe results of containers, keyed by container name."""

    def __init__(self, args: argparse.Namespace, options: AgentOptions, docker_client: docker.DockerClient,
                 consul: ConsulClient, submit: Callable[..., None], probes: ProbePool,
                 readers: concurrent.futures.Executor) -> None:
        self.args = args
        self.options = options
        self.docker = docker_client
        self.consul = consul
        self.submit = submit        # submit(name, task, *args): queue a task on that container's worker
        self.probes = probes
        self.readers = readers      # Consul reads made while the same task inspects the container
        self.claims = ServiceIdClaims()
        self.expected = ExpectedServices()
        self.states: dict[str, ContainerState] = {}

    # ---- state and reads
    def state(self, name: str) -> ContainerState:
        found = self.states.get(name)
        if found is None:
            found = self.states[name] = ContainerState()
        return found

    def forget(self, name: str) -> None:
        """Drop everything about a container that is gone (its probes are cancelled first)."""
        state = self.states.pop(name, None)
        if state is not None:
            for _digest, cancelled in state.probing.values():
                cancelled.set()

    def known(self) -> list[str]:
        """Names of the containers with state (read by the full pass to find the ones gone)."""
        return list(self.states)

    def owned_for(self, name: str) -> dict[str, Any]:
        found = self.consul.agent_services_where(f"Meta.{CONTAINER_META} == {filter_string(name)}")
        return owned_services(found, self.options.owner)

    def inspect(self, name: str) -> dict[str, Any] | None:
        try:
            return self.docker.api.inspect_container(name)
        except docker.errors.NotFound:
            return None

    def selected(self, inspect: Mapping[str, Any]) -> bool:
        return label_matches((inspect.get("Config") or {}).get("Labels"), self.args.filter_label)

    def is_draining(self, name: str, state: ContainerState) -> bool:
        if state.draining_until is None:
            return False
        if time.monotonic() < state.draining_until:
            return True
        log.warning("container %s still runs %.0fs after the signal that drained it; routing it again",
                    name, self.args.drain_grace)
        state.draining_until = None
        return False

    def desired(self, inspect: Mapping[str, Any], state: ContainerState,
                have: Services | None = None) -> tuple[list[dict[str, Any]], set[str]]:
        """(registrations the container should have now, other containers whose service IDs moved).

        Claims the container's service IDs, so call it only for a running container that is not
        draining. ``have``: its services in Consul, None when not read.
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
        if tuple(warnings) != state.warned:
            # Logged when they change, not on every periodic pass.
            for warning in warnings:
                log.warning("%s", warning)
            state.warned = tuple(warnings)
        health = docker_health_status(inspect)
        if health is not None:
            services = [add_health_check(s, self.args.health_ttl, consul_status(health)) for s in services]
        return [with_digest(service) for service in services], moved

    def reconcile_moved(self, moved: set[str], reason: str) -> None:
        """Containers that gained or lost a service ID reconcile now, each on its own worker."""
        for other in sorted(moved):
            log.info("%s: reconciling %s, whose service IDs changed hands", reason, other)
            self.submit(other, self.reconcile, other, False, None, True)

    # ---- tasks
    def reconcile(self, name: str, started: bool = False, snapshot: Services | None = None,
                  changed: bool = False, taken: float = float("inf")) -> None:
        """Make Consul hold what the container wants now.

        ``snapshot``: this container's services from a full pass, read from Consul at monotonic time
        ``taken``; it saves a Consul read per container, and is read again when a task of this
        container wrote to Consul since (an event handled between the pass's read and this task),
        so a stale snapshot never sends a registration twice. ``changed``: the container changed
        (an event), so what a full pass remembered of it is stale.
        """
        state = self.state(name)
        if snapshot is not None and state.wrote_since(taken):
            snapshot = None
        if started:
            state.draining_until = None
        if started or changed:
            state.desired = None
        # Docker and Consul are read at once: under load each read takes tens of milliseconds.
        reading = self.readers.submit(self.owned_for, name) if snapshot is None else None
        inspect = self.inspect(name)
        docker_state = (inspect or {}).get("State")
        have: Services = reading.result() if reading is not None else (snapshot or {})
        running = bool(docker_state and docker_state.get("Running") and not docker_state.get("Paused"))
        phase = container_phase(docker_state, running and self.is_draining(name, state), have, self.args.deregister)
        if phase == KEEP:
            log.info("container %s exited with %s: left registered (--deregister on-success)",
                     name, (docker_state or {}).get("ExitCode"))
            return
        desired: list[dict[str, Any]]
        if phase in (DRAINED, REMOVE) or inspect is None:  # ROUTE means running, so inspected
            desired, moved = [], self.claims.release(name)
        else:
            desired, moved = self.desired(inspect, state, have)
        if phase == REMOVE:
            state.draining_until = None
            state.health_sent = None
        to_register, to_deregister = plan_changes(desired, have)
        self._cancel_probes(state, keep={(r["ID"], r["Meta"][DIGEST_META]) for r in desired})
        for service_id in to_deregister:
            self.deregister(service_id, name)
        for registration in to_register:
            if not self._refused_recently(state, registration):
                self.register(name, state, registration, new=registration["ID"] not in have)
        if phase not in (DRAINED, REMOVE) and to_register:
            state.health_sent = (self._health_of(desired), time.monotonic())
        # After this container's own changes, so none of them undoes what the others do now.
        self.reconcile_moved(moved, f"container {name}")
        if inspect is None:
            self.forget(name)

    def full_pass_check(self, name: str, list_status: str | None, snapshot: Services, taken: float) -> None:
        """A full pass saw this running container: reconcile it only if Consul differs from it.

        ``snapshot``: its services as the pass read them from Consul at monotonic time ``taken``.
        """
        state = self.state(name)
        if state.wrote_since(taken):
            # Its own task wrote to Consul after the pass read it: compare with what Consul holds now.
            taken = time.monotonic()
            snapshot = self.owned_for(name)
        if state.desired is None:
            inspect = self.inspect(name)
            if inspect is None:
                self.reconcile(name, False, snapshot, False, taken)
                return
            running = bool((inspect.get("State") or {}).get("Running"))
            desired, moved = self.desired(inspect, state, snapshot) \
                if running and not self.is_draining(name, state) else ([], set())
            self.reconcile_moved(moved, "full pass")
            state.desired = desired
        desired = [] if self.is_draining(name, state) else state.desired
        if not digests_match(desired, snapshot):
            self.reconcile(name, False, snapshot, False, taken)
        elif self._health_is_stale(state, list_status):
            self.update_health(name)

    def register(self, name: str, state: ContainerState, registration: dict[str, Any], new: bool = False) -> None:
        """Register now, or once its check first passes when it is new and has a check to probe.

        Consul starts a new check as critical and runs it first after a random part of its interval,
        and keeps the status of an existing check when a service is registered again: so a new
        service is probed first and registered as passing, while a changed one keeps its state.
        """
        target = probe_target(registration) if new and self.args.probe_interval > 0 else None
        if target:
            service_id, digest = registration["ID"], registration["Meta"][DIGEST_META]
            probing = state.probing.get(service_id)
            if probing is not None and probing[0] == digest:
                return  # already being probed
            # One quick attempt first: an app that already answers (a restore, a restart) registers at once.
            if probe_once(dict(target, timeout=min(target["timeout"], QUICK_PROBE_SECONDS))):
                registration = mark_passing(registration)
            else:
                if probing is not None:
                    probing[1].set()

                def finished(passed: bool, name: str = name, registration: dict[str, Any] = registration) -> None:
                    self.submit(name, self.probe_finished, name, registration, passed)

                cancelled = self.probes.start(target, self.args.probe_interval, self.args.probe_timeout, finished)
                state.probing[service_id] = (digest, cancelled)
                log.info("%s (%s) waits for its check to pass before it is registered", service_id, name)
                return
        self._send(name, state, registration)

    def probe_finished(self, name: str, registration: dict[str, Any], passed: bool) -> None:
        """Register after the probe, if the container still wants exactly what was probed."""
        state = self.states.get(name)
        probing = state.probing.get(registration["ID"]) if state is not None else None
        if state is None or probing is None or probing[0] != registration["Meta"][DIGEST_META]:
            return
        del state.probing[registration["ID"]]
        if not passed:
            log.info("%s did not pass its check within %.0fs: registered, Consul's check decides",
                     registration["ID"], self.args.probe_timeout)
        inspect = self.inspect(name)
        if inspect is None or not (inspect.get("State") or {}).get("Running") or self.is_draining(name, state):
            return
        desired, moved = self.desired(inspect, state)
        self.reconcile_moved(moved, f"container {name}")
        current = {s["ID"]: s for s in desired}.get(registration["ID"])
        if current is None or current["Meta"] != registration["Meta"]:
            return
        self._send(name, state, mark_passing(current) if passed else current)

    def drain(self, name: str, signal_value: str | None) -> None:
        """Take the container out of Consul on the kill that will end it (before its die)."""
        inspect = self.inspect(name)
        stop_signal = ((inspect or {}).get("Config") or {}).get("StopSignal")
        if inspect is None or not drains_on_kill(signal_value, stop_signal):
            return
        state = self.state(name)
        state.draining_until = time.monotonic() + self.args.drain_grace
        self._cancel_probes(state)
        moved = self.claims.release(name)
        for service_id in sorted(self.owned_for(name)):
            self.deregister(service_id, name, f" before it stops (signal {signal_value})")
        self.reconcile_moved(moved, f"container {name} drained")

    def update_health(self, name: str) -> None:
        """Send Docker's health status of the container to its TTL checks."""
        inspect = self.inspect(name)
        health = docker_health_status(inspect) if inspect else None
        if health is None:
            return
        status = consul_status(health)
        for service_id in sorted(self.owned_for(name)):
            self.consul.update_ttl_check(health_check_id(service_id), status, f"Docker health status: {health}")
        self.state(name).health_sent = (status, time.monotonic())
        log.info("%s: Docker health %s -> Consul %s", name, health, status)

    # ---- Consul writes
    def _send(self, name: str, state: ContainerState, registration: dict[str, Any]) -> None:
        try:
            # Replacing checks drops one the previous definition had and this one has not.
            self.consul.register_service(registration, replace_existing_checks=True)
        except ConsulError as exc:
            if exc.status is None:
                raise  # Consul unreachable: the reconciliation retries
            # Consul answered no to this registration: bad input of this container, retried only later.
            log.warning("container %s: Consul refused service %s: %s", name, registration["ID"], exc)
            key = (registration["ID"], registration["Meta"][DIGEST_META])
            state.refused[key] = time.monotonic() + REFUSED_RETRY_SECONDS
            return
        state.wrote()
        self.expected.mark(registration["ID"], True)
        self.claims.registered(name, registration["ID"])
        check: Mapping[str, Any] = registration.get("Check") or next(iter(registration.get("Checks") or []), {})
        status = check.get("Status")
        log.info("registered %s (%s %s:%s) for %s%s", registration["ID"], registration["Name"],
                 registration.get("Address"), registration.get("Port"), name,
                 f" as {status}" if status else "")

    def deregister(self, service_id: str, name: str, reason: str = "") -> None:
        self.expected.mark(service_id, False)
        self.consul.deregister_service(service_id)
        state = self.states.get(name)
        if state is not None:
            state.wrote()
        log.info("deregistered %s (%s)%s", service_id, name, reason)

    # ---- small rules about the state
    @staticmethod
    def _cancel_probes(state: ContainerState, keep: set[tuple[str, str]] | frozenset = frozenset()) -> None:
        for service_id, (digest, cancelled) in list(state.probing.items()):
            if (service_id, digest) not in keep:
                cancelled.set()
                del state.probing[service_id]

    @staticmethod
    def _refused_recently(state: ContainerState, registration: Mapping[str, Any]) -> bool:
        key = (registration["ID"], registration["Meta"][DIGEST_META])
        retry_at = state.refused.get(key)
        if retry_at is not None and time.monotonic() >= retry_at:
            del state.refused[key]
            return False
        return retry_at is not None

    @staticmethod
    def _health_is_stale(state: ContainerState, list_status: str | None) -> bool:
        health = health_from_list_status(list_status)
        if health is None:
            return False
        sent = state.health_sent
        # Refreshed well before the TTL runs out, and whenever Docker's status differs from what was sent.
        return sent is None or sent[0] != consul_status(health) or time.monotonic() - sent[1] > HEALTH_REFRESH_SECONDS

    @staticmethod
    def _health_of(registrations: list[dict[str, Any]]) -> str | None:
        for registration in registrations:
            for check in registration.get("Checks") or []:
                if check.get("CheckID", "").startswith(HEALTH_CHECK_PREFIX):
                    return check.get("Status")
        return None
