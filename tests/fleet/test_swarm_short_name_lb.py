# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Internal load balancing by short name through the proxy, across hosts: a container on a host
without an edge reaches http://www.hello/ through the edges, whose proxies are attached to the
overlay network with the alias www.hello (swarm role, swarm_attach)."""

from __future__ import annotations

from swarm_support import OVERLAY, client, container_ip, tasks_registered, wait_for

GET_MANY = """
import json, socket, urllib.request
out = {"resolved": sorted({a[4][0] for a in socket.getaddrinfo("www.hello", 80, socket.AF_INET, socket.SOCK_STREAM)}),
       "statuses": [], "served_by": []}
for _ in range(12):
    with urllib.request.urlopen("http://www.hello/", timeout=10) as response:
        out["statuses"].append(response.status)
        body = response.read().decode(errors="replace")
        out["served_by"].append(body.split("My hostname is")[-1].split("<")[0].strip())
print(json.dumps(out))
"""


def test_container_without_an_edge_reaches_www_hello_through_an_edge(swarm_stack):
    wait_for("3 tasks registered", lambda: tasks_registered(swarm_stack, 3))
    edges = sorted(h for h in swarm_stack.hosts if h.endswith(("-h1", "-h4")))
    proxies = sorted(container_ip(swarm_stack, edge, "autoproxy_proxy", OVERLAY) for edge in edges)
    non_edge = next(h for h in sorted(swarm_stack.hosts) if h not in edges)

    def routed():
        result = client(swarm_stack, non_edge, GET_MANY, "--network", OVERLAY)
        return result if result["statuses"] == [200] * 12 else None

    result = wait_for("www.hello answered 200 through the edges", routed, timeout=60, interval=3)
    # The short name is the edges' proxies, and nothing else.
    assert result["resolved"] == proxies
    # Round robin over the tasks, on several hosts: more than one task answered.
    assert len(set(result["served_by"])) > 1
