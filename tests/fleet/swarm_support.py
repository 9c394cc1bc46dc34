# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for the Swarm, Consul DNS and short-name tests on the lab (playbooks/swarm.yml)."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from fleet_support import Fleet

SERVICE = "autoproxy_web"        # the demo app's Swarm service (<prefix>_<name>)
OVERLAY = "autoproxy_overlay"    # the swarm role's overlay network
STACK_NETWORK = "autoproxy"      # the stack's bridge network on each host
DNS_ADDRESS = "10.213.53.53"     # consul_dns_address in playbooks/swarm.yml
MANAGER = "h1"                   # first Consul server: the Swarm's first manager

T = TypeVar("T")


def host(fleet: Fleet, short: str) -> str:
    """Inventory name of a lab host from its short name (h1 -> <prefix>-h1)."""
    return next(name for name in fleet.hosts if name.endswith(f"-{short}"))


def consul_get(fleet: Fleet, on: str, path: str) -> Any:
    """GET a Consul HTTP API path from the agent on host `on` (its API on the host's 127.0.0.1:8500)."""
    code = ("import urllib.request; "
            f"print(urllib.request.urlopen('http://127.0.0.1:8500{path}', timeout=10).read().decode())")
    return json.loads(fleet.ssh(on, f"python3 -c {shlex.quote(code)}"))


def catalog(fleet: Fleet, on: str, service: str = "www") -> list[dict[str, Any]]:
    """Instances of `service` in the catalog with their checks: [{node, address, container, passing}]."""
    entries = consul_get(fleet, on, f"/v1/health/service/{service}")
    return [{"node": e["Node"]["Node"], "address": e["Service"]["Address"],
             "container": e["Service"]["Meta"].get("autoproxy_container", ""),
             "passing": all(c["Status"] == "passing" for c in e["Checks"])} for e in entries]


def running_tasks(fleet: Fleet) -> set[tuple[str, str]]:
    """(node, container name) of the service's running tasks, as the Swarm manager sees them."""
    out = fleet.ssh(host(fleet, MANAGER), f"docker service ps --no-trunc -f desired-state=running "
                    f"--format '{{{{.Node}}}} {{{{.Name}}}}.{{{{.ID}}}} {{{{.CurrentState}}}}' {SERVICE}")
    tasks = set()
    for line in out.splitlines():
        node, name, state = line.split(" ", 2)
        if state.startswith("Running"):
            tasks.add((node, name))
    return tasks


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120, interval: float = 2) -> T:
    """Call probe until it returns something other than None (or a false value); fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def tasks_registered(fleet: Fleet, replicas: int) -> list[dict[str, Any]] | None:
    """The catalog's instances when they are exactly the running tasks (on their own nodes), all passing."""
    tasks = running_tasks(fleet)
    if len(tasks) != replicas:
        return None
    instances = [i for i in catalog(fleet, host(fleet, MANAGER)) if i["container"].startswith(SERVICE + ".")]
    if {(i["node"], i["container"]) for i in instances} == tasks and all(i["passing"] for i in instances):
        return instances
    return None


def client(fleet: Fleet, on: str, code: str, *docker_args: str, timeout: float = 120) -> Any:
    """Run a Python snippet in a throwaway container on host `on` (the agent image, which has Python).

    The snippet prints one JSON document, returned parsed. docker_args: e.g. --network, --dns.
    """
    images = fleet.facts["images"]
    image = f"{images['agent_image_name']}:{images['agent_image_tag']}"
    command = ["docker", "run", "--rm", "--entrypoint", "python3", *docker_args, image, "-c", code]
    return json.loads(fleet.ssh(on, shlex.join(command), timeout=timeout).strip().splitlines()[-1])


def container_ip(fleet: Fleet, on: str, container: str, network: str) -> str:
    """Address of a container on a network (docker inspect on host `on`)."""
    fmt = f'{{{{ (index .NetworkSettings.Networks "{network}").IPAddress }}}}'
    return fleet.ssh(on, f"docker inspect -f {shlex.quote(fmt)} {container}").strip()
