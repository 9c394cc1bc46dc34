# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent: Docker events -> Consul service registrations.

Accepts gliderlabs/registrator's SERVICE_* environment variables and labels (the rules are in
plugins/module_utils/_containers.py). It subscribes to Docker events before it lists the
running containers, so nothing that starts during start-up is missed, handles every event of
every container on one worker thread (no reordering), reconnects the event stream forever,
and reconciles what it registered with what runs at a fixed period, in both directions.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import socket
import sys
import threading

import docker

from ansible_collections.autoproxy.stack.agents._common import Backoff, env_default, split_list
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._containers import (
    AgentOptions,
    container_name,
    container_services,
)

log = logging.getLogger("autoproxy.registrator")

OWNER_META = "autoproxy_owner"
CONTAINER_META = "autoproxy_container"
REGISTER_ACTIONS = ("start", "unpause")
DEREGISTER_ACTIONS = ("die",)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="autoproxy-agent registrator", description=__doc__)
    parser.add_argument("--consul", default=env_default("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"),
                        help="Consul HTTP API URL")
    parser.add_argument("--consul-token", default=os.environ.get("CONSUL_HTTP_TOKEN"))
    parser.add_argument("--internal", action="store_true",
                        help="register the container's IP and exposed port (else host IP and published port)")
    parser.add_argument("--ip", dest="host_ip", help="host IP to register for published ports")
    parser.add_argument("--network", help="Docker network whose IP is registered for multi-network containers")
    parser.add_argument("--explicit", action="store_true", help="only register containers with SERVICE_NAME")
    parser.add_argument("--use-ip-from-label", dest="ip_from_label", help="take the service IP from this label")
    parser.add_argument("--tags", default="", help="comma list of tags added to every service")
    parser.add_argument("--hostname", default=socket.gethostname(), help="host name used in service IDs")
    parser.add_argument("--deregister", choices=("always", "on-success"), default="always")
    parser.add_argument("--resync", type=float, default=10.0,
                        help="seconds between full reconciliations with Docker (0: only at start)")
    parser.add_argument("--retry-interval", type=float, default=2.0, help="seconds between Consul retries at start")
    return parser.parse_args(argv)


class RegistratorAgent:
    def __init__(self, args, docker_client=None):
        self.args = args
        self.docker = docker_client or docker.from_env()
        self.consul = ConsulClient(args.consul, token=args.consul_token)
        self.options = AgentOptions(
            hostname=args.hostname,
            mode="internal" if args.internal else "host",
            host_ip=args.host_ip,
            network=args.network,
            explicit=args.explicit,
            ip_from_label=args.ip_from_label,
            tags=tuple(split_list(args.tags)),
            owner="registrator:" + args.hostname,
        )
        self.work = queue.Queue()
        self.stopping = threading.Event()
        # container id -> service IDs this agent registered for it
        self.registered = {}

    # ---- Docker side
    def subscribe(self):
        return self.docker.api.events(decode=True, filters={"type": "container"})

    def pump_events(self, stream):
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                for event in stream:
                    backoff.reset()
                    action = (event.get("Action") or event.get("status") or "").split(":")[0]
                    if action in REGISTER_ACTIONS or action in DEREGISTER_ACTIONS:
                        self.work.put((action, event.get("id") or event.get("Actor", {}).get("ID"), event))
                log.warning("Docker event stream closed; reconnecting")
            except Exception as exc:  # noqa: BLE001 - any failure of the stream means: reconnect
                log.warning("Docker event stream failed: %s; reconnecting", exc)
            backoff.sleep(self.stopping)
            try:
                stream = self.subscribe()
            except Exception as exc:  # noqa: BLE001
                log.warning("cannot subscribe to Docker events: %s", exc)
                continue
            # Events may have been missed while disconnected.
            self.work.put(("sync", None, None))

    def running_containers(self):
        return [self.docker.api.inspect_container(c["Id"]) for c in self.docker.api.containers()]

    # ---- Consul side
    def desired(self, inspect):
        services, warnings = container_services(inspect, self.options)
        for warning in warnings:
            log.warning("%s", warning)
        return services

    def register(self, inspect):
        ids = []
        for service in self.desired(inspect):
            self.consul.register_service(service)
            ids.append(service["ID"])
            log.info("registered %s (%s %s:%s) for %s", service["ID"], service["Name"], service.get("Address"),
                     service.get("Port"), container_name(inspect))
        if ids:
            self.registered[inspect["Id"]] = ids

    def deregister(self, container_id, event):
        attributes = (event or {}).get("Actor", {}).get("Attributes", {})
        if self.args.deregister == "on-success" and attributes.get("exitCode", "0") != "0":
            log.info("container %s exited with %s: left registered (--deregister on-success)",
                     attributes.get("name", container_id[:12]), attributes.get("exitCode"))
            return
        ids = set(self.registered.pop(container_id, ()))
        name = attributes.get("name")
        if name:
            ids.update(sid for sid, svc in self.owned().items() if svc.get("Meta", {}).get(CONTAINER_META) == name)
        for service_id in sorted(ids):
            self.consul.deregister_service(service_id)
            log.info("deregistered %s (%s)", service_id, name or container_id[:12])

    def owned(self):
        return {sid: svc for sid, svc in self.consul.agent_services().items()
                if (svc.get("Meta") or {}).get(OWNER_META) == self.options.owner}

    def sync(self):
        """Make Consul hold exactly the registrations of the running containers (ours only)."""
        wanted = {}
        self.registered = {}
        for inspect in self.running_containers():
            for service in self.desired(inspect):
                wanted[service["ID"]] = service
                self.registered.setdefault(inspect["Id"], []).append(service["ID"])
        have = self.owned()
        for service_id in sorted(set(wanted) - set(have)):
            self.consul.register_service(wanted[service_id])
            log.info("sync: registered missing %s", service_id)
        for service_id in sorted(set(have) - set(wanted)):
            self.consul.deregister_service(service_id)
            log.info("sync: deregistered stale %s", service_id)

    # ---- main loop
    def handle(self, action, container_id, event):
        if action == "sync":
            self.sync()
        elif action in DEREGISTER_ACTIONS:
            self.deregister(container_id, event)
        else:
            try:
                inspect = self.docker.api.inspect_container(container_id)
            except docker.errors.NotFound:
                return
            if inspect.get("State", {}).get("Running"):
                self.register(inspect)

    def wait_for_consul(self):
        while not self.stopping.is_set():
            try:
                if self.consul.leader():
                    return
                log.info("Consul at %s has no leader yet", self.args.consul)
            except ConsulError as exc:
                log.info("waiting for Consul: %s", exc)
            self.stopping.wait(self.args.retry_interval)

    def schedule_resync(self):
        if self.args.resync <= 0 or self.stopping.is_set():
            return
        timer = threading.Timer(self.args.resync, self.resync_now)
        timer.daemon = True
        timer.start()

    def resync_now(self):
        self.work.put(("sync", None, None))
        self.schedule_resync()

    def run(self):
        self.wait_for_consul()
        # Subscribe first, then list: a container that starts in between is in the stream.
        stream = self.subscribe()
        threading.Thread(target=self.pump_events, args=(stream,), name="docker-events", daemon=True).start()
        self.work.put(("sync", None, None))
        self.schedule_resync()
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                action, container_id, event = self.work.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                self.handle(action, container_id, event)
                backoff.reset()
            except (ConsulError, docker.errors.APIError, OSError) as exc:
                log.warning("%s %s failed: %s; will reconcile", action, (container_id or "")[:12], exc)
                backoff.sleep(self.stopping)
                self.work.put(("sync", None, None))
        return 0

    def stop(self, *_):
        self.stopping.set()


def main(argv):
    agent = RegistratorAgent(parse_args(argv))
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
