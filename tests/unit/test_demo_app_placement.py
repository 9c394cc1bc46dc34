# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The demo_app role's placement of replicas over hosts (roles/demo_app/vars/main.yml), rendered by
Ansible's own templating: spread is round robin by replica number, fill takes each host in turn up
to demo_app_max_per_host, and both keep a replica on its host while the count changes."""

from __future__ import annotations

import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core before 2.19 templates every string
    def trust_as_template(value):
        return value

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
with open(os.path.join(ROOT, "roles", "demo_app", "vars", "main.yml"), encoding="utf-8") as handle:
    ROLE_VARS = yaml.safe_load(handle)
HOSTS = ["h1", "h2", "h3", "h4"]


def render(name, host="h1", fleet=True, **inputs):
    """A variable of the role's vars/main.yml for `host`, with the inputs (role defaults overridden)."""
    variables = {key: trust_as_template(value) if isinstance(value, str) else value for key, value in ROLE_VARS.items()}
    variables.update({"demo_app_prefix": "ap", "demo_app_name": "web", "demo_app_hosts": HOSTS,
                      "demo_app_mode": "containers", "demo_app_placement": "spread", "demo_app_max_per_host": 10,
                      "inventory_hostname": host,
                      "groups": {"consul_servers": ["h1"] if fleet else []}})
    variables.update(inputs)
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template("{{ " + name + " }}"))


def shares(replicas, **inputs):
    return {host: render("demo_app_wanted", host, demo_app_replicas=replicas, **inputs) for host in HOSTS}


def test_spread_is_round_robin_by_replica_number():
    assert shares(9) == {"h1": [1, 5, 9], "h2": [2, 6], "h3": [3, 7], "h4": [4, 8]}
    assert shares(2) == {"h1": [1], "h2": [2], "h3": [], "h4": []}
    assert shares(0) == dict.fromkeys(HOSTS, [])


def test_fill_takes_each_host_in_turn_up_to_the_maximum():
    assert shares(7, demo_app_placement="fill", demo_app_max_per_host=3) == {
        "h1": [1, 2, 3], "h2": [4, 5, 6], "h3": [7], "h4": []}


@pytest.mark.parametrize("placement", ["spread", "fill"])
def test_a_replica_stays_on_its_host_while_the_count_changes(placement):
    small = shares(3, demo_app_placement=placement, demo_app_max_per_host=2)
    large = shares(8, demo_app_placement=placement, demo_app_max_per_host=2)
    for host in HOSTS:
        assert set(small[host]) <= set(large[host])


def test_a_host_outside_the_list_runs_no_replica():
    assert render("demo_app_wanted", "elsewhere", demo_app_replicas=5) == []


def test_one_host_runs_every_replica_as_before():
    assert render("demo_app_wanted_names", "localhost", fleet=False, demo_app_hosts=["localhost"],
                  demo_app_replicas=3) == ["ap_web_1", "ap_web_2", "ap_web_3"]


def test_the_wait_expects_each_replica_from_its_own_host_in_a_fleet():
    assert render("demo_app_expected", demo_app_replicas=5) == [
        "h1/ap_web_1", "h2/ap_web_2", "h3/ap_web_3", "h4/ap_web_4", "h1/ap_web_5"]
    assert render("demo_app_expected", fleet=False, demo_app_replicas=2) == ["ap_web_1", "ap_web_2"]


def test_swarm_mode_runs_no_container_of_its_own():
    assert render("demo_app_wanted", demo_app_mode="swarm", demo_app_replicas=5) == []
    assert render("demo_app_expected", demo_app_mode="swarm", demo_app_replicas=5) == []
