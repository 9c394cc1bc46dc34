# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Docker events in: each event becomes a task on its container's worker, nothing is decided here.

The stream is reconnected forever; what happened while it was down is found by a full pass.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import docker

from ansible_collections.autoproxy.stack.agents._common import Backoff
from ansible_collections.autoproxy.stack.agents._registrator_container import ContainerTasks
from ansible_collections.autoproxy.stack.agents._registrator_options import label_matches

log = logging.getLogger("autoproxy.registrator")

CONTAINER_ACTIONS = ("start", "unpause", "pause", "die", "destroy", "kill", "health_status", "rename")
NETWORK_ACTIONS = ("connect", "disconnect")
# Events after which what a full pass remembered of the container is stale.
CHANGING_ACTIONS = ("start", "die", "destroy")


class EventIntake:
    """Turns Docker events into container tasks; remembers container names only for live containers."""

    def __init__(self, args: argparse.Namespace, docker_client: docker.DockerClient, tasks: ContainerTasks,
                 submit: Callable[..., None], stopping: threading.Event, sync_wanted: threading.Event) -> None:
        self.args = args
        self.docker = docker_client
        self.tasks = tasks
        self.submit = submit
        self.stopping = stopping
        self.sync_wanted = sync_wanted
        # Network events name the container by ID only; destroyed ones are dropped, and each full
        # pass keeps only the containers it lists.
        self.names_by_id: dict[str, str] = {}

    def subscribe(self) -> Iterable[Mapping[str, Any]]:
        return self.docker.api.events(decode=True, filters={"type": ["container", "network"]})

    def keep_names_of(self, listed_ids: set[str]) -> None:
        for container_id in list(self.names_by_id):
            if container_id not in listed_ids:
                self.names_by_id.pop(container_id, None)

    def remember_name(self, container_id: str, name: str) -> None:
        self.names_by_id[container_id] = name

    def dispatch(self, event: Mapping[str, Any]) -> None:
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        if event.get("Type") == "network":
            if action in NETWORK_ACTIONS:
                self.dispatch_network(attributes.get("container", ""))
            return
        if action not in CONTAINER_ACTIONS or not label_matches(attributes, self.args.filter_label):
            return
        container_id = actor.get("ID") or event.get("id") or ""
        name = attributes.get("name") or self.names_by_id.get(container_id) or container_id[:12]
        if action == "destroy":
            self.names_by_id.pop(container_id, None)
        else:
            self.names_by_id[container_id] = name
        tasks = self.tasks
        if action == "kill":
            if self.args.drain:
                self.submit(name, tasks.drain, name, attributes.get("signal"))
        elif action == "health_status":
            self.submit(name, tasks.update_health, name)
        elif action == "rename":
            old_name = attributes.get("oldName", "").lstrip("/")
            if old_name:
                self.submit(old_name, tasks.reconcile, old_name, False, None, True)
            self.submit(name, tasks.reconcile, name, False, None, True)
        else:
            self.submit(name, tasks.reconcile, name, action == "start", None, action in CHANGING_ACTIONS)

    def dispatch_network(self, container_id: str) -> None:
        """A network (dis)connect can change a running container's address: reconcile it.

        Only containers this agent has seen are reconciled. Every container is connected to its
        networks before its start event, which registers it; inspecting unknown ones here would
        hold up the event stream by one Docker round trip per new container.
        """
        name = self.names_by_id.get(container_id)
        if name is not None:
            self.submit(name, self.tasks.reconcile, name, False, None, True)

    def pump(self, stream: Iterable[Mapping[str, Any]]) -> None:
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
