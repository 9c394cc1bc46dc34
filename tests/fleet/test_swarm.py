# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Swarm mode on the lab: the demo app as a Swarm service, its tasks registered by the registrator of
the node each runs on (overlay address, internal mode), scaled by scale.yml and by hand."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from swarm_support import MANAGER, OVERLAY, SERVICE, container_ip, host, running_tasks, tasks_registered, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_swarm_has_managers_from_consul_servers_and_a_worker(swarm_stack):
    out = swarm_stack.ssh(host(swarm_stack, MANAGER),
                          "docker node ls --format '{{.Hostname}} {{.ManagerStatus}} {{.Status}}'")
    nodes = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert sorted(nodes) == sorted(swarm_stack.hosts)
    managers = sorted(name for name, (status, *_rest) in nodes.items() if status in ("Leader", "Reachable"))
    assert managers == sorted(h for h in swarm_stack.hosts if not h.endswith("-h4"))
    assert all(fields[-1] == "Ready" for fields in nodes.values())


def test_tasks_registered_with_their_overlay_address_on_their_node(swarm_stack):
    instances = wait_for("3 tasks registered and passing", lambda: tasks_registered(swarm_stack, 3))
    for instance in instances:
        name = instance["container"]
        assert instance["address"] == container_ip(swarm_stack, instance["node"], name, OVERLAY)
        assert ipaddress.ip_address(instance["address"]).is_private
    # Swarm spreads the replicas: more than one node serves, each registered by its own agent.
    assert len({i["node"] for i in instances}) > 1


def test_second_run_changes_nothing_and_keeps_the_tasks(swarm_stack):
    before = running_tasks(swarm_stack)
    result = swarm_stack.playbook_json(str(ROOT / "tests/fleet/playbooks/swarm.yml"), "-e", "web_replicas=3")
    stats = result["stats"]
    assert all(not s["failures"] and not s["unreachable"] for s in stats.values()), json.dumps(stats)
    assert {host: s["changed"] for host, s in stats.items() if s["changed"]} == {}
    assert running_tasks(swarm_stack) == before


def test_hand_scaling_is_followed_on_every_node(swarm_stack):
    manager = host(swarm_stack, MANAGER)
    before = {name for _node, name in running_tasks(swarm_stack)}
    swarm_stack.ssh(manager, f"docker service scale --detach {SERVICE}=1")
    instances = wait_for("1 task registered after docker service scale =1", lambda: tasks_registered(swarm_stack, 1))
    # The tasks that stopped left the catalog, whichever node they ran on.
    assert {i["container"] for i in instances} < before
    swarm_stack.ssh(manager, f"docker service scale --detach {SERVICE}=4")
    instances = wait_for("4 tasks registered after docker service scale =4", lambda: tasks_registered(swarm_stack, 4))
    assert len({i["node"] for i in instances}) > 1


def test_scale_playbook_scales_the_service(swarm_stack):
    swarm_stack.playbook("autoproxy.stack.scale", "-e", "autoproxy_hosts=docker_hosts", "-e", "demo_app_mode=swarm",
                         "-e", "web_replicas=2")
    # The playbook itself waited for the catalog; check it holds exactly the running tasks.
    assert tasks_registered(swarm_stack, 2)
    swarm_stack.playbook("autoproxy.stack.scale", "-e", "autoproxy_hosts=docker_hosts", "-e", "demo_app_mode=swarm",
                         "-e", "web_replicas=3")
    assert tasks_registered(swarm_stack, 3)
