# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""site.yml and scale.yml over the lab, from the installed collection over SSH: the topology comes
from the inventory's groups (Consul agents and registrators on docker_hosts, proxies on edges),
both edges route every replica on every host, a second run changes nothing, and scale.yml
spreads the replicas over the hosts and converges up and down."""

from __future__ import annotations

import json
import time

import pytest
from fleet_support import HELLO, changed_hosts, failures

pytestmark = pytest.mark.fleet


def assert_both_edges_route_exactly(stack, replicas: dict[str, dict[str, str]]) -> None:
    """Every edge answers www.hello.test from every replica on every host, and from no other container."""
    stack.wait_routed_exactly({short_id for per_host in replicas.values() for short_id in per_host.values()},
                              timeout=60)


def routing_table_servers(output: dict) -> list[str]:
    """The servers of www.hello.test in the routing table site.yml or scale.yml printed."""
    for play in output["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith("Show the routing table"):
                for result in task["hosts"].values():
                    for line in result.get("msg", []):
                        if line.startswith(f"{HELLO} -> "):
                            return sorted(line.rsplit(" -> ", 1)[1].split(", "))
    pytest.fail("no routing table line for www.hello.test in the playbook's output")


def replicas_by_host(stack) -> dict[str, dict[str, str]]:
    return {host: stack.containers(host) for host in stack.fleet.hosts}


def published_servers(stack, replicas: dict[str, dict[str, str]]) -> list[str]:
    """address:published port of every replica, as the registrator registers them in host mode."""
    servers = []
    for host, per_host in replicas.items():
        for name in per_host:
            port = stack.fleet.ssh(host, f"docker port {name} 80/tcp").split()[0].rsplit(":", 1)[1]
            servers.append(f"{stack.fleet.hosts[host]}:{port}")
    return sorted(servers)


def test_site_places_every_part_on_its_hosts(fleet_stack):
    stack = fleet_stack
    for host in stack.fleet.hosts:
        running = stack.running(host)
        assert {"autoproxy_consul", "autoproxy_registrator"} <= running, host
        assert ("autoproxy_proxy" in running) == (host in stack.edges), (host, sorted(running))
    # The registrator runs in host mode with the host's lab address, on every host.
    for host, address in stack.fleet.hosts.items():
        command = json.loads(stack.fleet.ssh(host, "docker inspect -f '{{json .Args}}' autoproxy_registrator"))
        assert "--internal" not in command, command
        assert f"--ip={address}" in command, command


def test_both_edges_route_the_demo_app_through_their_local_agent(fleet_stack):
    stack = fleet_stack
    replicas = replicas_by_host(stack)
    assert sum(len(per_host) for per_host in replicas.values()) == 1
    assert routing_table_servers(stack.site_result) == published_servers(stack, replicas)
    for edge in stack.edges:
        command = json.loads(stack.fleet.ssh(edge, "docker inspect -f '{{json .Args}}' autoproxy_proxy"))
        assert "--consul=http://consul:8500" in command, command
    assert_both_edges_route_exactly(stack, replicas)


def test_a_second_site_run_changes_nothing(fleet_stack):
    started = time.monotonic()
    result = fleet_stack.fleet.playbook_json("autoproxy.stack.site")
    print(f"second site.yml run: {time.monotonic() - started:.0f} s")
    assert not failures(result), json.dumps(result["stats"])
    assert changed_hosts(result) == {}


@pytest.mark.parametrize("replicas", [9, 2])
def test_scale_spreads_the_replicas_over_the_hosts_and_converges(fleet_stack, replicas):
    """Round robin by replica number (demo_app_placement: spread): replica n on docker_hosts[(n-1) % count]."""
    stack = fleet_stack
    hosts = stack.groups["docker_hosts"]
    started = time.monotonic()
    result = stack.fleet.playbook_json("autoproxy.stack.scale", "-e", f"web_replicas={replicas}")
    print(f"scale.yml to {replicas}: {time.monotonic() - started:.0f} s")
    assert not failures(result), json.dumps(result["stats"])
    found = replicas_by_host(stack)
    expected = {host: sorted(f"autoproxy_web_{n}" for n in range(1, replicas + 1)
                             if hosts[(n - 1) % len(hosts)] == host) for host in hosts}
    assert {host: sorted(per_host) for host, per_host in found.items()} == expected
    assert routing_table_servers(result) == published_servers(stack, found)
    assert len({server.split(":")[0] for server in routing_table_servers(result)}) == min(replicas, len(hosts))
    assert_both_edges_route_exactly(stack, found)
