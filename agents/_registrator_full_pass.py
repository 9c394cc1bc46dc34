# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The full pass: list Docker and Consul once, then queue a check on every container's worker.

It runs every ``--resync`` seconds, at start, and whenever something may have been missed (the
event stream reconnected, Consul came back, a task failed). It decides nothing about a container
itself; only registrator-style IDs no container of ours owns (``--cleanup``) are removed here.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import docker

from ansible_collections.autoproxy.stack.agents._common import Backoff
from ansible_collections.autoproxy.stack.agents._registrator_container import ContainerTasks
from ansible_collections.autoproxy.stack.agents._registrator_intake import EventIntake
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._containers import AgentOptions
from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import (
    owned_services,
    registrator_cleanup_ids,
    services_by_container,
)

log = logging.getLogger("autoproxy.registrator")

FAILURES = (ConsulError, docker.errors.DockerException, OSError)


class _Countdown:
    """Counts tasks submitted through ``wrapping`` until each has run (or failed)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._left = 0

    def wrapping(self, submit: Callable[..., None]) -> Callable[..., None]:
        def counted_submit(key: str, fn: Callable[..., Any], *args: Any) -> None:
            with self._lock:
                self._left += 1
            submit(key, self._run, fn, *args)

        return counted_submit

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        finally:
            with self._lock:
                self._left -= 1
                if not self._left:
                    self._lock.notify_all()

    def wait(self, stopping: threading.Event) -> None:
        with self._lock:
            while self._left and not stopping.is_set():
                self._lock.wait(1.0)


def listed_name(container: dict[str, Any]) -> str:
    """A container's name in ``GET /containers/json`` (its short ID if it has none)."""
    return (container.get("Names") or ["/" + container["Id"][:12]])[0].lstrip("/")


class FullPass:
    """Reconciles Consul with Docker both ways, through the containers' own workers."""

    def __init__(self, args: argparse.Namespace, options: AgentOptions, docker_client: docker.DockerClient,
                 consul: ConsulClient, tasks: ContainerTasks, intake: EventIntake,
                 stopping: threading.Event, wanted: threading.Event) -> None:
        self.args = args
        self.options = options
        self.docker = docker_client
        self.consul = consul
        self.tasks = tasks
        self.intake = intake
        self.stopping = stopping
        self.wanted = wanted

    def list_containers(self) -> list[dict[str, Any]]:
        filters = {"label": self.args.filter_label} if self.args.filter_label else None
        return self.docker.api.containers(all=True, filters=filters)

    def run_once(self) -> None:
        """One pass; returns once every container's worker has handled its part of it.

        Waiting keeps passes from piling up: when the workers are slower than ``--resync`` (a
        loaded Docker engine), the next pass starts late instead of queueing a second check per
        container behind the first.
        """
        pending = _Countdown()
        self._queue_checks(pending.wrapping(self.intake.submit))
        pending.wait(self.stopping)

    def _queue_checks(self, submit: Callable[..., None]) -> None:
        containers = self.list_containers()
        taken = time.monotonic()  # before the read: a write racing with it makes the snapshot stale
        all_services = self.consul.agent_services()
        grouped = services_by_container(owned_services(all_services, self.options.owner))
        running = set()
        for container in containers:
            name = listed_name(container)
            self.intake.remember_name(container["Id"], name)
            if container.get("State") != "running":
                continue
            running.add(name)
            submit(name, self.tasks.full_pass_check, name, container.get("Status"), grouped.get(name, {}), taken)
        self.intake.keep_names_of({container["Id"] for container in containers})
        listed = {listed_name(container) for container in containers}
        for name in sorted(name for name in grouped if name not in running):
            submit(name, self.tasks.reconcile, name, False, grouped[name], False, taken)
        # Containers remembered but no longer listed: their worker finds them gone and forgets them.
        for name in sorted(set(self.tasks.known()) - listed - set(grouped)):
            submit(name, self.tasks.reconcile, name)
        if self.args.cleanup:
            names = {(c.get("Names") or [""])[0].lstrip("/") for c in containers}
            for service_id in registrator_cleanup_ids(all_services, self.args.hostname, names, self.options.owner):
                self.consul.deregister_service(service_id)
                log.info("cleanup: deregistered %s (registrator-style ID, no live container)", service_id)

    def loop(self) -> None:
        backoff = Backoff(first=0.2, cap=2.0)
        period = self.args.resync if self.args.resync > 0 else None
        while not self.stopping.is_set():
            self.wanted.wait(timeout=period)
            if self.stopping.is_set():
                return
            self.wanted.clear()
            try:
                self.run_once()
                backoff.reset()
            except FAILURES as exc:
                log.warning("reconciliation failed: %s; retrying", exc)
                backoff.sleep(self.stopping)
                self.wanted.set()
