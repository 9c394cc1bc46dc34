# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for tests on the fleet lab (tests/fleet/lab.py; `make fleet-up` starts it).

Ansible reaches the lab hosts over SSH with the inventory the lab wrote, and uses the collection
as installed from its built tarball, as a user's controller would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet_support import Fleet, FleetStack, failures
from lab import Config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def lab_facts() -> dict:
    """lab.json of the running lab. No lab: skipped, unless the lab is required (make fleet-test, CI)."""
    path = Config.from_env().state / "lab.json"
    if not path.exists():
        message = f"no fleet lab is up ({path} is missing): run `make fleet-up` first"
        if os.environ.get("CI") or os.environ.get("AUTOPROXY_LAB_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory) -> Path:
    """An ansible.cfg whose collections_path holds only the collection installed from its tarball."""
    build = tmp_path_factory.mktemp("collection")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(build),
                    str(ROOT)], check=True, stdout=subprocess.PIPE)
    tarballs = list(build.glob("autoproxy-stack-*.tar.gz"))
    if len(tarballs) != 1:
        pytest.fail(f"ansible-galaxy collection build made {tarballs!r}")
    collections = build / "collections"
    config = build / "ansible.cfg"
    config.write_text(f"[defaults]\ncollections_path = {collections}\nretry_files_enabled = false\n"
                      "interpreter_python = auto_silent\n")
    # --no-deps: community.docker comes with the `ansible` package; Galaxy may be unreachable.
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps",
                    "-p", str(collections), str(tarballs[0])], check=True, stdout=subprocess.PIPE,
                   env=dict(os.environ, ANSIBLE_CONFIG=str(config)))
    return config


@pytest.fixture(scope="session")
def fleet(lab_facts, installed_collection) -> Fleet:
    return Fleet(lab_facts, installed_collection)


@pytest.fixture(scope="session")
def fleet_stack(fleet) -> FleetStack:
    """The whole stack deployed over the lab by `autoproxy.stack.site` from the installed tarball, once per session.

    Starts from hosts without the stack (teardown first, so the run is cold apart from pulled
    images) and tears it down at the end. Tests that change the stack (scale, stop a host) must
    leave it as they found it or say so. The first run's JSON result and duration are kept.
    """
    fleet.playbook_json("autoproxy.stack.teardown")
    started = time.monotonic()
    result = fleet.playbook_json("autoproxy.stack.site")
    stack = FleetStack(fleet, result, time.monotonic() - started)
    assert not failures(result), json.dumps(result["stats"])
    print(f"fleet_stack: cold site.yml over {len(fleet.hosts)} hosts in {stack.site_seconds:.0f} s")
    yield stack
    fleet.playbook_json("autoproxy.stack.teardown")


@pytest.fixture(scope="session")
def swarm_stack(fleet) -> Fleet:
    """The lab with playbooks/swarm.yml applied: Consul with DNS, a Swarm, registrators, edge proxies, 3 tasks."""
    # Runs after test_site.py (file order: the swarm files sort after it). A stack deployed before
    # (test_consul_cluster.py) made the stack's network without the fixed subnet
    # Consul DNS needs, which Docker cannot change: tear that stack down first.
    subnets = {name: fleet.ssh(name, "docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' autoproxy"
                                     " 2>/dev/null || true").strip() for name in fleet.hosts}
    if any(subnet and subnet != "10.213.53.0/24" for subnet in subnets.values()):
        fleet.playbook("autoproxy.stack.teardown", "-e", "autoproxy_hosts=docker_hosts")
    fleet.playbook(str(Path(__file__).parent / "playbooks" / "swarm.yml"), "-e", "web_replicas=3")
    return fleet
