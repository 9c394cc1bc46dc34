# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet lab itself: Ansible reaches every host over real SSH, and every host's own dockerd
pulls from the lab's registry and runs the container."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fleet_support import task_results

pytestmark = pytest.mark.fleet

SMOKE = str(Path(__file__).parent / "playbooks" / "smoke.yml")


@pytest.fixture(scope="module")
def smoke(fleet):
    return fleet.playbook_json(SMOKE)


def test_inventory_has_the_fleet_groups(lab_facts):
    inventory = yaml.safe_load(Path(lab_facts["inventory"]).read_text())["all"]
    hosts = sorted(lab_facts["hosts"])
    assert inventory["vars"]["ansible_connection"] == "ssh"
    assert sorted(inventory["children"]["docker_hosts"]["hosts"]) == hosts
    servers = sorted(inventory["children"]["consul_servers"]["hosts"])
    edges = sorted(inventory["children"]["edges"]["hosts"])
    assert len(servers) % 2 == 1
    assert len(edges) == 2
    assert set(hosts) - set(servers), "no host is a Consul client only"
    assert set(edges) - set(servers), "no edge is on a non-server host"


def test_every_host_answers_over_ssh(smoke, lab_facts):
    pings = task_results(smoke, "Ping over SSH")
    assert {host: result.get("ping") for host, result in pings.items()} == dict.fromkeys(lab_facts["hosts"], "pong")
    facts = task_results(smoke, "Read where the connection comes from")
    for host, address in lab_facts["hosts"].items():
        gathered = facts[host]["ansible_facts"]
        assert gathered["ansible_hostname"] == host
        # sshd sets SSH_CONNECTION: "client_ip client_port server_ip server_port".
        assert gathered["ansible_env"]["SSH_CONNECTION"].split()[2:] == [address, "22"]


def test_every_engine_runs_a_container_pulled_from_the_lab_registry(smoke, lab_facts):
    runs = task_results(smoke, "Run a container from the lab registry's image")
    images = task_results(smoke, "Read the image's registry digest")
    assert sorted(runs) == sorted(lab_facts["hosts"])
    for host in lab_facts["hosts"]:
        assert runs[host].get("failed") is not True, runs[host].get("msg")
        assert runs[host]["container"]["Output"].strip().startswith("debian 13.")
        assert runs[host]["container"]["Output"].strip().endswith(f"on engine {host}")
        repo_digests = images[host]["images"][0]["RepoDigests"]
        assert any(d.startswith(lab_facts["registry"] + "/") for d in repo_digests), repo_digests


def test_containers_on_a_host_resolve_the_lab_hosts_names(fleet, lab_facts):
    """A host's containers get the host's DNS forwarder, not public resolvers: lab names resolve."""
    host, other = list(lab_facts["hosts"])[:2]
    answer = fleet.ssh(host, f"docker run --rm {lab_facts['images']['agent_image_base']} getent hosts {other}")
    assert answer.split()[0] == lab_facts["hosts"][other]
