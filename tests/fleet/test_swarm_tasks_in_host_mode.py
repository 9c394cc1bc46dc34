# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Swarm tasks in host mode: each task publishes port 80 in ``mode: host`` on its node, and the
node's registrator (host mode) registers the node's lab address and that published port; both
edges route every task there, without the overlay.

Runs after the other Swarm files (file order) and leaves the lab's stack in host mode.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from fleet_support import groups, wait_routed_exactly
from swarm_support import MANAGER, SERVICE, consul_get, host, running_tasks, wait_for

ROOT = Path(__file__).resolve().parents[2]
EDGE_PORT = 8080  # proxy_http_host_port in playbooks/swarm.yml


def registered_at_published_ports(fleet, replicas: int) -> list[dict] | None:
    """The task instances in the catalog when they are exactly the running tasks, all passing, each
    at its node's lab address and the port Docker published for it there; else None."""
    tasks = running_tasks(fleet)
    if len(tasks) != replicas:
        return None
    entries = [e for e in consul_get(fleet, host(fleet, MANAGER), "/v1/health/service/www")
               if e["Service"]["Meta"].get("autoproxy_container", "").startswith(SERVICE + ".")]
    if {(e["Node"]["Node"], e["Service"]["Meta"]["autoproxy_container"]) for e in entries} != tasks:
        return None
    found = []
    for entry in entries:
        node, container = entry["Node"]["Node"], entry["Service"]["Meta"]["autoproxy_container"]
        ports = json.loads(fleet.ssh(node, f"docker inspect -f '{{{{json .NetworkSettings.Ports}}}}' "
                                           f"{shlex.quote(container)}"))
        published = {int(binding["HostPort"]) for binding in ports.get("80/tcp") or []}
        hostname = fleet.ssh(node, f"docker inspect -f '{{{{.Config.Hostname}}}}' {shlex.quote(container)}").strip()
        passing = all(check["Status"] == "passing" for check in entry["Checks"])
        if not passing or entry["Service"]["Address"] != fleet.hosts[node] or entry["Service"]["Port"] not in published:
            return None
        found.append({"node": node, "hostname": hostname, "port": entry["Service"]["Port"]})
    return found


def test_host_mode_registers_each_task_at_its_nodes_address_and_published_port(swarm_stack):
    swarm_stack.playbook(str(ROOT / "tests/fleet/playbooks/swarm.yml"), "-e", "web_replicas=3",
                         "-e", "registrator_mode=host", "-e", "demo_app_swarm_publish_host=true")
    instances = wait_for("3 tasks registered at their nodes' addresses and published ports",
                         lambda: registered_at_published_ports(swarm_stack, 3))
    assert len({i["node"] for i in instances}) > 1
    edges = groups(swarm_stack.facts)["edges"]
    wait_routed_exactly({edge: swarm_stack.hosts[edge] for edge in edges}, {i["hostname"] for i in instances},
                        port=EDGE_PORT, timeout=60)
