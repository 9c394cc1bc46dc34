# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""teardown.yml on the Swarm stack (playbooks/swarm.yml): it removes the demo app's Swarm service,
its tasks and the overlay network besides the containers, and leaves the Swarm. Sorts after the
other Swarm files: it removes the stack they share (swarm_stack)."""

from __future__ import annotations

import json

import pytest
from fleet_support import changed_hosts, failures
from swarm_support import MANAGER, OVERLAY, SERVICE, host

pytestmark = pytest.mark.fleet


def stack_leftovers(fleet) -> dict[str, list[str]]:
    """{host: the stack's containers and networks still there, and the overlay}, hosts with none left out."""
    left = {}
    for name in fleet.hosts:
        out = fleet.ssh(name, "docker ps -aq --filter label=autoproxy.stack.project=autoproxy; "
                              "docker network ls -q --filter label=autoproxy.stack.project=autoproxy; "
                              f"docker network ls -q --filter name=^{OVERLAY}$")
        if out.split():
            left[name] = out.split()
    return left


def test_teardown_removes_the_swarm_service_and_overlay_and_keeps_the_swarm(swarm_stack):
    fleet = swarm_stack
    manager = host(fleet, MANAGER)
    assert SERVICE in fleet.ssh(manager, "docker service ls --format '{{.Name}}'").split()
    result = fleet.playbook_json("autoproxy.stack.teardown", "-e", "autoproxy_hosts=docker_hosts")
    assert not failures(result), json.dumps(result["stats"])
    assert fleet.ssh(manager, "docker service ls -q --filter label=autoproxy.stack.project=autoproxy").split() == []
    assert stack_leftovers(fleet) == {}
    # The Swarm stays, with every node in it.
    for name in fleet.hosts:
        assert fleet.ssh(name, "docker info -f '{{.Swarm.LocalNodeState}}'").strip() == "active", name
    assert len(fleet.ssh(manager, "docker node ls -q").split()) == len(fleet.hosts)
    again = fleet.playbook_json("autoproxy.stack.teardown", "-e", "autoproxy_hosts=docker_hosts")
    assert not failures(again), json.dumps(again["stats"])
    assert changed_hosts(again) == {}
