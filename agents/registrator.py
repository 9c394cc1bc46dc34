# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent (its description, also its ``--help``: _registrator_options.DESCRIPTION).

The parts, one concern each: the command line (_registrator_options), the Docker event intake
(_registrator_intake), the full pass (_registrator_full_pass), the Consul watch
(_registrator_consul_watch); they only queue tasks for containers. The tasks that decide about a
container (_registrator_container) run on one worker per container at a time, on a bounded pool
(_registrator_workers); new services' probes run on their own bounded pool (_registrator_probes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import signal
import sys
import threading
from typing import Any

import docker

from ansible_collections.autoproxy.stack.agents._registrator_consul_watch import ConsulWatch
from ansible_collections.autoproxy.stack.agents._registrator_container import ContainerTasks
from ansible_collections.autoproxy.stack.agents._registrator_full_pass import FAILURES, FullPass
from ansible_collections.autoproxy.stack.agents._registrator_intake import EventIntake
from ansible_collections.autoproxy.stack.agents._registrator_options import parse_args
from ansible_collections.autoproxy.stack.agents._registrator_probes import ProbePool
from ansible_collections.autoproxy.stack.agents._registrator_workers import ContainerWorkers
from ansible_collections.autoproxy.stack.plugins.module_utils._agent_settings import consul_client
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._containers import AgentOptions

log = logging.getLogger("autoproxy.registrator")

PARALLEL_CONTAINERS = 32  # container tasks running at once
PARALLEL_PROBES = 8       # probe attempts running at once


def agent_options(args: argparse.Namespace) -> AgentOptions:
    """The registration rules' options from the command line."""
    return AgentOptions(
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


class RegistratorAgent:
    """Wires the parts together, starts their threads and stops them."""

    def __init__(self, args: argparse.Namespace, docker_client: docker.DockerClient | None = None) -> None:
        self.args = args
        self.docker = docker_client or docker.from_env(timeout=30)
        self.consul = consul_client(args)
        self.options = agent_options(args)
        self.stopping = threading.Event()
        self.sync_wanted = threading.Event()
        self.workers = ContainerWorkers(self._task_failed, max_workers=PARALLEL_CONTAINERS)
        self.probes = ProbePool(self.stopping, max_workers=PARALLEL_PROBES)
        # One Consul read per container task at most, beside its Docker inspect (see reconcile).
        self.readers = concurrent.futures.ThreadPoolExecutor(PARALLEL_CONTAINERS, thread_name_prefix="consul-read")
        self.tasks = ContainerTasks(args, self.options, self.docker, self.consul, self.workers.submit, self.probes,
                                    self.readers)
        self.intake = EventIntake(args, self.docker, self.tasks, self.workers.submit, self.stopping,
                                  self.sync_wanted)
        self.full_pass = FullPass(args, self.options, self.docker, self.consul, self.tasks, self.intake,
                                  self.stopping, self.sync_wanted)
        self.consul_watch = ConsulWatch(self.consul, self.options.owner, self.tasks.expected, self.stopping,
                                        self.sync_wanted)

    def _task_failed(self, key: str, exc: BaseException) -> None:
        if isinstance(exc, FAILURES):
            log.warning("container %s: %s; will reconcile", key, exc)
        else:
            log.exception("container %s: unexpected failure; will reconcile", key, exc_info=exc)
        self.sync_wanted.set()

    def wait_for_consul(self) -> bool:
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

    def run(self) -> int:
        if not self.wait_for_consul():
            return 0 if self.stopping.is_set() else 1
        # Subscribe first, then list: a container that starts in between is in the stream.
        stream = self.intake.subscribe()
        for target, name, args in ((self.intake.pump, "docker-events", (stream,)),
                                   (self.full_pass.loop, "reconcile", ()),
                                   (self.consul_watch.loop, "consul-watch", ())):
            threading.Thread(target=target, args=args, name=name, daemon=True).start()
        self.sync_wanted.set()
        log.info("registrator agent started: owner %s, Consul %s", self.options.owner, self.args.consul)
        self.stopping.wait()
        return 0

    def stop(self, *_signal: Any) -> None:
        self.stopping.set()
        self.sync_wanted.set()
        # Reads not started yet are dropped: at exit nothing waits for a Consul that hangs.
        self.readers.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str]) -> int:
    agent = RegistratorAgent(parse_args(argv))
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
