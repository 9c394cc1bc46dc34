# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A full pass's Consul snapshot that a container's own event made stale sends nothing twice.

The race, seen in CI: the agent starts, its first full pass reads Consul (the container is not
there yet), the container's start event registers it, and then the pass's check for the same
container compares with the old read and registers it again. The steps run here in that order, in
process, on the agent's own tasks, against the real Docker engine and a real Consul, so the order
is certain rather than left to timing.
"""

from __future__ import annotations

import logging
import time

import pytest
from support import owned_services

from ansible_collections.autoproxy.stack.agents._registrator_options import parse_args
from ansible_collections.autoproxy.stack.agents.registrator import RegistratorAgent

pytestmark = pytest.mark.e2e

AGENT = "snapshot"


@pytest.fixture(scope="module")
def consul_and_agent(resources, consul_factory):
    network = resources.network("snapshot")
    consul = consul_factory(network, "snapshot-consul")
    agent = RegistratorAgent(parse_args([f"--consul={consul.url}", "--internal", f"--hostname={AGENT}",
                                         f"--filter-label=aptest.reg={AGENT}"]))
    yield consul, agent, network
    agent.stop()


def registered_lines(caplog, service_id):
    return [r for r in caplog.records if r.getMessage().startswith(f"registered {service_id} ")]


@pytest.mark.parametrize("pass_task", ["full_pass_check", "reconcile"])
def test_a_snapshot_older_than_the_containers_own_registration_is_read_again(consul_and_agent, resources, images,
                                                                             caplog, pass_task):
    consul, agent, network = consul_and_agent
    container = resources.run(f"snap-{pass_task}", images["demo_app_image"], network=network,
                              env={"SERVICE_NAME": "snapweb"}, labels={"aptest.reg": AGENT})
    caplog.set_level(logging.INFO, logger="autoproxy.registrator")
    service_id = f"{AGENT}:{container}:80"
    taken = time.monotonic()
    snapshot: dict = {}  # what the pass read: the container not registered yet
    assert service_id not in owned_services(consul, AGENT)

    agent.tasks.reconcile(container, True)  # the start event, handled first
    assert service_id in owned_services(consul, AGENT)
    index = consul.get("/v1/agent/service/" + service_id)["ContentHash"]

    if pass_task == "full_pass_check":
        agent.tasks.full_pass_check(container, "Up 1 second", snapshot, taken)
    else:
        agent.tasks.reconcile(container, False, snapshot, False, taken)

    assert len(registered_lines(caplog, service_id)) == 1
    assert consul.get("/v1/agent/service/" + service_id)["ContentHash"] == index
    # A snapshot read after the registration is trusted as it is: no extra Consul read, no write.
    fresh = {service_id: owned_services(consul, AGENT)[service_id]}
    agent.tasks.full_pass_check(container, "Up 1 second", fresh, time.monotonic())
    assert len(registered_lines(caplog, service_id)) == 1
