# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Consul DNS on the lab: a container that opts in (--dns <consul_dns_address>) resolves
<service>.service.consul and <tag>.<service>.service.consul through its own host's Consul agent and
reaches, by that name, a service running on other hosts: no links, no network aliases."""

from __future__ import annotations

from swarm_support import DNS_ADDRESS, MANAGER, OVERLAY, STACK_NETWORK, client, host, tasks_registered, wait_for

RESOLVE_AND_GET = """
import json, socket, urllib.request
out = {}
for name in ("www.service.consul", "hello.www.service.consul"):
    out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)})
with urllib.request.urlopen("http://hello.www.service.consul/", timeout=10) as response:
    out["status"] = response.status
    out["body"] = response.read().decode(errors="replace")
try:
    socket.getaddrinfo("nothing.service.consul", 80)
    out["unknown"] = "resolved"
except socket.gaierror:
    out["unknown"] = "not found"
print(json.dumps(out))
"""


def test_container_on_one_host_reaches_a_service_on_others_by_consul_dns_name(swarm_stack):
    instances = wait_for("3 tasks registered", lambda: tasks_registered(swarm_stack, 3))
    serving_nodes = {i["node"] for i in instances}
    # Host A: one that runs no task of the service, so every answer is a service on another host.
    host_a = next((h for h in sorted(swarm_stack.hosts) if h not in serving_nodes), None)
    if host_a is None:
        swarm_stack.ssh(host(swarm_stack, MANAGER), "docker service scale --detach autoproxy_web=2")
        instances = wait_for("2 tasks registered", lambda: tasks_registered(swarm_stack, 2))
        serving_nodes = {i["node"] for i in instances}
        host_a = next(h for h in sorted(swarm_stack.hosts) if h not in serving_nodes)
    addresses = sorted(i["address"] for i in instances)

    # The client asks its host's Consul agent on the stack's network, and reaches the tasks' addresses
    # on the overlay.
    result = client(swarm_stack, host_a, RESOLVE_AND_GET, "--network", STACK_NETWORK, "--network", OVERLAY,
                    "--dns", DNS_ADDRESS)

    assert result["www.service.consul"] == addresses
    assert result["hello.www.service.consul"] == addresses
    assert result["status"] == 200
    assert "Hello world!" in result["body"]
    assert result["unknown"] == "not found"
